"""A small byte-level BPE tokenizer trained locally, plus AntAngelMed's chat format.

Trained on the bilingual medical corpus shipped in this package, so no download is needed and
the same inputs give the same tokenizer.json on every machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

BOS_TOKEN = "<|startoftext|>"
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|role_end|>"  # ends every chat turn, so generation stops there
ROLE_OPEN = "<role>"
ROLE_CLOSE = "</role>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS_TOKEN, PAD_TOKEN, EOS_TOKEN, ROLE_OPEN, ROLE_CLOSE)

# Ling / AntAngelMed turn format: <role>NAME</role>text<|role_end|>, the assistant is prompted
# with a bare <role>ASSISTANT</role>. Content may be an OpenAI string or a list of text parts.
#
# Tools follow the Ling 2.0 family's published template (Hermes-style JSON, which vLLM's `hermes` tool
# parser reads): with `tools`, one leading SYSTEM turn holds the system message, a newline and the
# function list; an assistant's calls follow its text, one `<tool_call>\n{"name": ..., "arguments":
# ...}\n</tool_call>` each, separated by newlines; consecutive tool results share one OBSERVATION turn,
# each wrapped in `\n<tool_response>\n...\n</tool_response>`. Without tools the rendering is unchanged.
TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
)


def _jinja_str(text: str) -> str:
    """`text` as a single-quoted Jinja string literal (the tool prompt is kept readable above)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


CHAT_TEMPLATE = (
    "{%- set role_names = {'system': 'SYSTEM', 'user': 'HUMAN', 'human': 'HUMAN', "
    "'assistant': 'ASSISTANT', 'tool': 'OBSERVATION'} -%}"
    "{%- macro text_of(message) -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- elif message['content'] is none -%}"
    "{%- else -%}{{- message['content'] | selectattr('type', 'equalto', 'text') "
    "| map(attribute='text') | join('') -}}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    "{%- set ns = namespace(skip_first=false) -%}"
    "{%- if tools -%}"
    "{{- '<role>SYSTEM</role>' -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{- text_of(messages[0]) + '\\n' -}}{%- set ns.skip_first = true -%}"
    "{%- endif -%}"
    "{{- " + _jinja_str(TOOLS_PREAMBLE) + " -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- " + _jinja_str(TOOLS_POSTAMBLE) + " + '<|role_end|>' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set text = text_of(message) -%}"
    "{%- if loop.first and ns.skip_first -%}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if loop.first or loop.previtem['role'] != 'tool' -%}{{- '<role>OBSERVATION</role>' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + text + '\\n</tool_response>' -}}"
    "{%- if loop.last or loop.nextitem['role'] != 'tool' -%}{{- '<|role_end|>' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<role>' + role_names.get(message['role'], message['role'] | upper) + '</role>' + text -}}"
    "{%- if message['role'] == 'assistant' and message['tool_calls'] -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set fn = call['function'] if call['function'] is defined else call -%}"
    "{%- if text or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": \"' + fn['name'] + '\", \"arguments\": ' -}}"
    "{%- if fn['arguments'] is string -%}{{- fn['arguments'] -}}"
    "{%- else -%}{{- fn['arguments'] | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|role_end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<role>ASSISTANT</role>' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class SpecialIds:
    """Ids the config files must agree on."""

    bos: int
    eos: int
    pad: int


def corpus_lines() -> list[str]:
    """The embedded training corpus (non-empty lines)."""
    text = resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def train_tokenizer(vocab_size: int) -> Tokenizer:
    """Train the byte-level BPE on the corpus; deterministic for a given vocab_size."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte gets a token, so any text (any language) encodes without an unknown token.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def special_ids(tok: Tokenizer) -> SpecialIds:
    def tid(token: str) -> int:
        idx = tok.token_to_id(token)
        assert idx is not None, f"{token} missing from the trained vocabulary"
        return idx

    return SpecialIds(bos=tid(BOS_TOKEN), eos=tid(EOS_TOKEN), pad=tid(PAD_TOKEN))


def tokenizer_config(tok: Tokenizer, model_max_length: int) -> dict[str, Any]:
    """tokenizer_config.json: loads with transformers' AutoTokenizer, no remote code."""
    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "added_tokens_decoder": added,
        "chat_template": CHAT_TEMPLATE,
    }


def special_tokens_map() -> dict[str, str]:
    return {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}


def write_tokenizer(tok: Tokenizer, out_dir: Path, model_max_length: int) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    tok.save(str(out_dir / "tokenizer.json"))
    _write_json(out_dir / "tokenizer_config.json", tokenizer_config(tok, model_max_length))
    _write_json(out_dir / "special_tokens_map.json", special_tokens_map())


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
