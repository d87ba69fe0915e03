"""Time llama.cpp answering prompts given as token ids (run by ``bench_generation.py``).

It runs in ``benchmarks/.venv-llamacpp`` (llama-cpp-python), never in the project's
environment, so it imports only ``llama_cpp`` and the standard library. It reads one JSON
request on stdin::

    {"model": GGUF path, "threads": n, "new_tokens": n, "warmup_tokens": n, "prompts": [[id, ...]]}

and writes one JSON reply on stdout::

    {"llama_cpp_version": ..., "system_info": ..., "answers": [
        {"seconds": ..., "first_token_s": ..., "decode_s": ..., "tokens": [id, ...]}]}

Decoding is greedy (temperature 0) and always yields ``new_tokens`` tokens: the end of
sequence does not stop it, as in the transformers runs it is compared with. ``seconds`` runs
from the prompt going in to the last token coming out; ``decode_s`` from the first token to
the last.
"""

import itertools
import json
import sys
import time

import llama_cpp

CONTEXT = 1024


def answer(llm: llama_cpp.Llama, prompt: list[int], new_tokens: int) -> dict:
    """Greedy-decode ``new_tokens`` tokens after ``prompt``, timing each."""
    llm.reset()  # no KV-cache reuse from the previous prompt: every answer pays its prefill
    started = time.perf_counter()
    tokens, times = [], []
    for token in itertools.islice(llm.generate(prompt, temp=0.0), new_tokens):
        tokens.append(token)
        times.append(time.perf_counter())
    return {
        "seconds": times[-1] - started,
        "first_token_s": times[0] - started,
        "decode_s": times[-1] - times[0],
        "tokens": tokens,
    }


def main() -> None:
    request = json.load(sys.stdin)
    llm = llama_cpp.Llama(
        model_path=request["model"],
        n_ctx=CONTEXT,
        n_threads=request["threads"],
        n_threads_batch=request["threads"],
        verbose=False,
    )
    prompts = request["prompts"]
    for prompt in prompts[:2]:  # warm-up
        answer(llm, prompt, request["warmup_tokens"])
    reply = {
        "llama_cpp_version": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(),
        "answers": [answer(llm, prompt, request["new_tokens"]) for prompt in prompts],
    }
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
