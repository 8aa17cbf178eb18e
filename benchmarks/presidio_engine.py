"""Presidio's analyzer as it can run where spaCy's trained pipelines cannot be installed: a blank English
spaCy pipeline (no NER; each token's lower case as its lemma, so the recognisers' context words still
count), with Presidio's default recognisers or every predefined pattern/phonenumbers recogniser for "en".
Used by benchmarks/phi_presidio.py; presidio-analyzer is imported inside the functions (it is not a
gateway dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

Span = tuple[int, int, str, float]


def build_presidio(all_patterns: bool) -> tuple[Any, list[dict[str, Any]]]:
    """An AnalyzerEngine for "en" on a blank spaCy pipeline, and its recognisers (name, entities)."""
    import presidio_analyzer
    import presidio_analyzer.predefined_recognizers as predefined
    import spacy
    import yaml
    from presidio_analyzer import AnalyzerEngine, PatternRecognizer
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer
    from presidio_analyzer.recognizer_registry import RecognizerRegistry, RecognizerRegistryProvider
    from spacy.language import Language

    if "lower_as_lemma" not in Language.factories:

        @Language.component("lower_as_lemma")
        def lower_as_lemma(doc: Any) -> Any:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """SpacyNlpEngine over spacy.blank("en"): no model to download, no NER."""

        def load(self) -> None:
            nlp = spacy.blank("en")
            nlp.add_pipe("lower_as_lemma")
            self.nlp = {"en": nlp}

    nlp_engine = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    nlp_engine.load()
    if all_patterns:
        conf_path = Path(presidio_analyzer.__file__).parent / "conf" / "default_recognizers.yaml"
        conf = yaml.safe_load(conf_path.read_text(encoding="utf-8"))
        kept = []
        for rec in conf["recognizers"]:
            langs = [
                lang if isinstance(lang, str) else lang["language"]
                for lang in rec.get("supported_languages", ["en"])
            ]
            cls = getattr(predefined, rec.get("class_name", rec["name"]), None)
            if "en" in langs and cls is not None and issubclass(cls, (PatternRecognizer, PhoneRecognizer)):
                kept.append({**rec, "enabled": True})
        conf["recognizers"] = kept
        conf["supported_languages"] = ["en"]
        registry = RecognizerRegistryProvider(
            registry_configuration=conf, nlp_engine=nlp_engine
        ).create_recognizer_registry()
    else:
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
    recognizers = [
        {"name": r.name, "entities": list(r.supported_entities)}
        for r in analyzer.registry.get_recognizers("en", all_fields=True)
    ]
    return analyzer, sorted(recognizers, key=lambda r: r["name"])


def presidio_detector(analyzer: Any) -> Any:
    def detect(text: str) -> tuple[str, list[Span]]:
        found = analyzer.analyze(text=text, language="en")
        return text, [(r.start, r.end, r.entity_type, float(r.score)) for r in found]

    return detect
