"""Streams one English and one Chinese chat through the gateway with the official `openai` client."""

import argparse

import httpx
from openai import OpenAI

CHATS = [
    "What are common causes of a tension headache?",
    "高血压患者日常饮食应该注意什么？",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True, help="gateway base URL ending in /v1")
    ap.add_argument("--key", required=True)
    ap.add_argument("--model", default="antangelmed")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.key)
    for question in CHATS:
        print(f"> {question}\n< ", end="", flush=True)
        stream = client.chat.completions.create(
            model=args.model, messages=[{"role": "user", "content": question}], max_tokens=32, stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()
    metrics = httpx.get(args.base_url.removesuffix("/v1") + "/metrics").text
    print("\n".join(line for line in metrics.splitlines() if line.startswith("gateway_requests_total")))


if __name__ == "__main__":
    main()
