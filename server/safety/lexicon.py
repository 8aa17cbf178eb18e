"""Person-name lexicons from packages that ship their data: Faker's locale providers (given names and
surnames of many locales, Latin script), read once at first use."""

from __future__ import annotations

import importlib
from functools import cache

# Locales whose providers carry Latin-script name lists (Chinese names are recognised by their surname
# tables and context in phi/names.py)
_LOCALES = (
    "en_US", "en_GB", "en_IN", "en_IE", "en_NZ", "es_ES", "es_MX", "fr_FR", "de_DE", "it_IT", "pt_BR",
    "pt_PT", "nl_NL", "pl_PL", "sv_SE", "no_NO", "da_DK", "fi_FI", "cs_CZ", "hu_HU", "ro_RO", "tr_TR",
    "id_ID", "vi_VN", "tl_PH", "fil_PH", "zh_TW", "zh_CN", "ja_JP", "ko_KR",
)  # fmt: skip
_FIELDS = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary", "last_names")


@cache
def latin_names() -> frozenset[str]:
    """Lower-cased given names and surnames written in Latin letters."""
    out: set[str] = set()
    for locale in _LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for field in _FIELDS:
            names = getattr(provider, field, None) or ()
            out.update(n.lower() for n in names if isinstance(n, str) and n.isascii() and n.isalpha())
    if not out:  # the package is a dependency: without it names would go out unheld, so say so at once
        raise RuntimeError("the safety layer needs Faker's name lists: pip install 'faker>=40'")
    return frozenset(out)
