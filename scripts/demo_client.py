"""What the demo shows, through the gateway with the official `openai` client:

1. a streamed chat (English and Chinese); on a generated checkpoint its text is random noise, and it says so;
2. a crisis message: the gateway's crisis resources in the answer and its `x-angel-safety` header;
3. a message with a patient's name and phone number next to what the engine actually received: vLLM's own
   record of the prompt it ran (`enable_response_messages` on `/v1/responses`), with the identifiers
   replaced by placeholders. Nothing is logged: the demo's patient is made up and printed here only;
4. the gateway's metrics lines that counted both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
from openai import OpenAI

CHATS = ["What are common causes of a tension headache?", "高血压患者日常饮食应该注意什么？"]
CRISIS = "I can't go on anymore. I want to end my life."
PATIENT = "My patient Maria Keller (phone 415-555-0142) asks how to take metformin with meals."
RULE = "-" * 100


def is_generated(model_dir: str | None) -> bool:
    """A checkpoint made by `python -m model_plugin.checkpoints` (it records how, in generator.json)."""
    return bool(model_dir) and (Path(model_dir) / "generator.json").is_file()


def section(title: str) -> None:
    print(f"\n{RULE}\n{title}\n{RULE}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True, help="gateway base URL ending in /v1")
    ap.add_argument("--key", required=True)
    ap.add_argument("--model", default="antangelmed")
    ap.add_argument("--model-dir", help="the checkpoint the engine serves (to tell a generated one)")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=300)
    noise = is_generated(args.model_dir)
    if noise:
        print(
            f"NOTE: the engine serves a GENERATED checkpoint ({args.model_dir}): random weights,\n"
            "so every answer below is random noise (random tokens, some of them broken UTF-8 pieces\n"
            "shown as '\ufffd'). What is real is the stack around the model. To serve real weights:\n"
            "    MODEL_DIR=/path/to/AntAngelMed scripts/demo.sh\n"
            "(GPU serving recipes: README.md, 'Serving recipes')."
        )
    label = " (random weights: noise)" if noise else ""

    section(f"1. A streamed chat{label}")
    for question in CHATS:
        print(f"> {question}\n< ", end="", flush=True)
        stream = client.chat.completions.create(
            model=args.model, messages=[{"role": "user", "content": question}], max_tokens=24, stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()

    section("2. A crisis message: the gateway answers with crisis resources, whatever the model writes")
    raw = client.chat.completions.with_raw_response.create(
        model=args.model, messages=[{"role": "user", "content": CRISIS}], max_tokens=12
    )
    print(f"> {CRISIS}\nx-angel-safety: {raw.headers['x-angel-safety']}")
    print(f"< {raw.parse().choices[0].message.content}")

    section("3. A patient's name and phone number: what the engine actually received")
    raw = client.responses.with_raw_response.create(
        model=args.model, input=PATIENT, max_output_tokens=8, extra_body={"enable_response_messages": True}
    )
    received = raw.parse().model_extra.get("input_messages") or []
    print(f"sent to the gateway:  {PATIENT}\nx-angel-safety: {raw.headers['x-angel-safety']}")
    print("the engine's prompt (vLLM's own record of what it ran, from /v1/responses' input_messages):")
    for message in received:
        print("  " + str(message.get("message", "")).replace("\n", "\n  "))

    section("4. The gateway's metrics that counted both (GET /metrics)")
    metrics = httpx.get(args.base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    for line in metrics.splitlines():
        if line.startswith(("gateway_safety_events_total{", "gateway_requests_total{")):
            print(line)


if __name__ == "__main__":
    main()
