"""OpenAI-compatible servers on 127.0.0.1 for the tests (port 0; started and stopped by the test).

* :class:`OpenAIServer` answers ``/v1/chat/completions`` and ``/v1/completions`` with a pluggable ``answer``
  function and injects faults from a queue (``script``): ``500``, ``429`` (with ``Retry-After``), ``400``,
  ``hang`` (sleep past the client's timeout), ``badjson`` (HTTP 200 with a body that is not JSON),
  ``empty`` (HTTP 200 with ``choices: []``), ``nofield`` (a choice without its message/logprobs),
  ``reset`` (the connection is closed without an answer), ``401`` (an answer that quotes the request's
  ``Authorization`` header back, as a careless server might). It records every request and the number in
  flight.
* :class:`ModelAnswers` answers like a real server around a transformers model (greedy generation, chat
  ``logprobs``/``top_logprobs`` with vLLM's ``continue_final_message``, completions ``echo`` with per-token
  ``token_logprobs``/``top_logprobs``/``text_offset``), so clca's local, echo and chat scoring routes can be
  compared on the same weights; optionally with a PEFT adapter on top.
* :class:`ServedModels` serves several of them by model name, as vLLM serves a base and its LoRA modules
  (``--lora-modules <name>=<dir>``); adapters are loaded when first asked for.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


class OpenAIServer:
    """A threaded HTTP server speaking the OpenAI wire format (see the module docstring)."""

    def __init__(self, answer: Answer, *, hang_s: float = 2.0) -> None:
        self.answer = answer
        self.script: list[str] = []
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.hang_s = hang_s
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append((self.path, body, dict(self.headers)))
                    action = server.script.pop(0) if server.script else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self._counted = True
                try:
                    self._act(action, body)
                finally:
                    self._done()

            def _done(self) -> None:
                if self._counted:  # a request stops counting before its answer is written
                    self._counted = False
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self._done()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _act(self, action: str, body: dict[str, Any]) -> None:
                if action == "hang":
                    time.sleep(server.hang_s)
                    return
                if action == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                    return
                if action in ("429", "500", "503", "400"):
                    headers = {"Retry-After": "0.05"} if action == "429" else {}
                    self._send(int(action), b'{"error": {"message": "scripted failure"}}', headers)
                    return
                if action == "401":
                    quoted = self.headers.get("Authorization", "none")
                    self._send(401, json.dumps({"error": {"message": f"bad key {quoted}"}}).encode())
                    return
                if action == "badjson":
                    self._send(200, b"{not json")
                    return
                if action == "empty":
                    self._send(200, json.dumps({"choices": []}).encode())
                    return
                if action == "nofield":
                    self._send(200, json.dumps({"choices": [{"index": 0}]}).encode())
                    return
                time.sleep(server.delay)
                self._send(200, json.dumps(server.answer(self.path, body)).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo_answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A canned model: chat replies "reply to: <last message> END x"; no log-probs."""
    if path.endswith("/chat/completions"):
        msg = {"role": "assistant", "content": "reply to: " + body["messages"][-1]["content"] + " END x"}
        return {"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}
    return {"choices": [{"index": 0, "text": body.get("prompt", "") + "!"}]}


class ModelAnswers:
    """Answers from a transformers causal LM (fp32, CPU), as vLLM would: see the module docstring."""

    def __init__(self, model_dir: Path, adapter: Path | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
        self.model = model.eval()
        self.lock = threading.Lock()
        #: what ends a reply: the template's end-of-turn token and EOS
        from clca.llm.chat_template import end_of_turn_id

        self.stop_ids = {end_of_turn_id(self.tok, str(model_dir))} | (
            {int(self.tok.eos_token_id)} if self.tok.eos_token_id is not None else set()
        )

    def _greedy(self, ids: list[int], max_tokens: int) -> str:
        """Greedy continuation of ``ids`` up to ``max_tokens`` tokens or an end-of-turn token."""
        out: list[int] = []
        for _ in range(max_tokens):
            nxt = int(self._logprobs(ids + out)[-1].argmax())
            if nxt in self.stop_ids:
                break
            out.append(nxt)
        return str(self.tok.decode(out, skip_special_tokens=True))

    def _logprobs(self, ids: list[int]) -> Any:
        with self.lock, self.torch.inference_mode():
            logits = self.model(input_ids=self.torch.tensor([ids])).logits[0].float()
        return self.torch.log_softmax(logits, dim=-1)

    def _text(self, i: int) -> str:
        return str(self.tok.decode([i], skip_special_tokens=False))

    def _top(self, row: Any, k: int) -> list[tuple[str, float]]:
        vals, idx = row.topk(k)
        return [(self._text(int(i)), float(v)) for v, i in zip(vals, idx, strict=True)]

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/chat/completions"):
            cont = bool(body.get("continue_final_message"))
            prompt = self.tok.apply_chat_template(
                body["messages"],
                tokenize=False,
                add_generation_prompt=not cont and body.get("add_generation_prompt", True),
                continue_final_message=cont,
            )
            ids = list(self.tok(prompt, add_special_tokens=False).input_ids)
            lp = self._logprobs(ids)[-1]
            best = int(lp.argmax())
            max_tokens = int(body.get("max_tokens") or 1)
            content = self._text(best) if max_tokens == 1 or cont else self._greedy(ids, max_tokens)
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "length",
            }
            if body.get("logprobs"):
                k = int(body.get("top_logprobs") or 0)
                top = [{"token": t, "logprob": v} for t, v in self._top(lp, max(k, 1))][:k] if k else []
                choice["logprobs"] = {
                    "content": [{"token": self._text(best), "logprob": float(lp[best]), "top_logprobs": top}]
                }
            return {"choices": [choice]}
        text = body["prompt"]
        ids = list(self.tok(text, add_special_tokens=False).input_ids)
        lp = self._logprobs(ids)
        best = int(lp[-1].argmax())
        k = int(body.get("logprobs") or 0)
        pieces = [self._text(i) for i in ids]
        offsets, pos = [], 0
        for p in pieces:
            offsets.append(pos)
            pos += len(p)
        gen = self._text(best)
        tokens, token_lps, tops, offs = (
            [gen],
            [float(lp[-1][best])],
            [dict(self._top(lp[-1], max(k, 1))[:k])],
            [pos],
        )
        if body.get("echo"):
            tokens = [*pieces, *tokens]
            token_lps = [None] + [float(lp[j - 1][ids[j]]) for j in range(1, len(ids))] + token_lps  # type: ignore[list-item]
            tops = [None] + [dict(self._top(lp[j - 1], max(k, 1))[:k]) for j in range(1, len(ids))] + tops  # type: ignore[list-item]
            offs = [*offsets, *offs]
        out_text = (text if body.get("echo") else "") + gen
        return {
            "choices": [
                {
                    "index": 0,
                    "text": out_text,
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": token_lps,
                        "top_logprobs": tops,
                        "text_offset": offs,
                    },
                    "finish_reason": "length",
                }
            ]
        }


class ServedModels:
    """Several :class:`ModelAnswers` behind one server, chosen by the request's ``model`` (the base's name or an
    adapter's); an unknown name gets a 404-like error body, as vLLM answers."""

    def __init__(self, base_name: str, model_dir: Path, adapters: dict[str, Path] | None = None) -> None:
        self.model_dir = model_dir
        self.adapters = dict(adapters or {})
        self.models: dict[str, ModelAnswers] = {base_name: ModelAnswers(model_dir)}
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("model"))
        with self.lock:
            self.asked.append(name)
            if name not in self.models:
                if name not in self.adapters:
                    return {"error": {"message": f"The model `{name}` does not exist."}}
                self.models[name] = ModelAnswers(self.model_dir, self.adapters[name])
            answers = self.models[name]
        return answers(path, body)
