"""LLM-as-judge for panorama captions over an OpenAI-compatible chat API (stdlib HTTP only).

Each (image, query) gets the ERP (resized JPEG, base64), the query, the references and the
prediction, and is rated on the rubric of SYSTEM.md §8: five criteria scored 1–5 — spatial accuracy
30%, query relevance 25%, factual accuracy 20%, completeness 15%, fluency 10% — and
``judge = 20 × Σ weight·score`` (20..100).

Replies are parsed strictly (one JSON object, all five integer scores in 1..5; a ```json fence is
the only wrapper tolerated). A reply that still cannot be parsed after the retries is recorded as a
*failure* with the raw reply — never as a default score. Results go to a JSONL file, one line per
finished item, so an interrupted run resumes where it stopped (failed items are retried).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from panollava.evaluation.report import find_local_image
from panollava.evaluation.samples import build_sample_sets
from panollava.evaluation.tables import TableError, read_predictions, read_references

__all__ = [
    "RUBRIC",
    "JudgeConfig",
    "JudgeItem",
    "JudgeParseError",
    "items_from_files",
    "judge_items",
    "judge_score",
    "parse_judge_reply",
    "summarize_results",
]

# (key, weight, what the judge rates)
RUBRIC = (
    (
        "spatial",
        0.30,
        "spatial accuracy: positions, directions and layout of things in the 360° scene",
    ),
    ("query_relevance", 0.25, "query relevance: the caption answers the query's topic"),
    ("factual", 0.20, "factual accuracy: no hallucinated objects, attributes or counts"),
    ("completeness", 0.15, "completeness: covers what the query asks about in the scene"),
    ("fluency", 0.10, "fluency: grammatical, clear, natural English"),
)
CRITERIA = tuple(key for key, _, _ in RUBRIC)
SYSTEM_PROMPT = (
    "You are a strict evaluator of captions for 360-degree equirectangular panoramas (ERP: the "
    "full sphere unrolled; left and right edges meet). Rate the candidate caption for the query "
    "using the image and the human reference captions."
)


class JudgeParseError(ValueError):
    """A judge reply that is not the required JSON object."""


class _HTTPError(RuntimeError):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def judge_score(scores: dict[str, int]) -> float:
    """Weighted rubric score: ``20 × Σ weight·score`` (20..100 for scores in 1..5)."""
    return 20.0 * sum(weight * scores[key] for key, weight, _ in RUBRIC)


def parse_judge_reply(text: str) -> dict[str, int]:
    """The five criterion scores of a reply; raises :class:`JudgeParseError` if not strict JSON."""
    body = text.strip()
    if body.startswith("```"):
        lines = body.splitlines()
        if (
            len(lines) < 2
            or lines[-1].strip() != "```"
            or lines[0].strip() not in ("```", "```json")
        ):
            raise JudgeParseError("unterminated or unknown code fence")
        body = "\n".join(lines[1:-1])
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise JudgeParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise JudgeParseError(f"expected a JSON object, got {type(data).__name__}")
    missing = [k for k in CRITERIA if k not in data]
    extra = sorted(set(data) - set(CRITERIA) - {"rationale"})
    if missing or extra:
        raise JudgeParseError(f"missing keys {missing}, unexpected keys {extra}")
    scores = {}
    for key in CRITERIA:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise JudgeParseError(f"{key} must be an integer 1..5, got {value!r}")
        scores[key] = value
    return scores


@dataclass(frozen=True)
class JudgeItem:
    run: str
    sample_id: str
    url: str
    query: str
    references: list[str]
    prediction: str
    image: Path | None = None


@dataclass(frozen=True)
class JudgeConfig:
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str | None = None
    concurrency: int = 4
    max_retries: int = 3  # extra attempts after the first (HTTP errors and unparsable replies)
    timeout_s: float = 120.0
    backoff_s: float = 2.0  # doubled after each retryable HTTP error
    temperature: float = 0.0
    max_tokens: int = 300
    image_max_width: int = 1024
    json_mode: bool = False  # send response_format={"type": "json_object"}
    price_in_per_mtok: float | None = None  # USD per million prompt tokens (for the cost log)
    price_out_per_mtok: float | None = None


def encode_image(path: Path, max_width: int) -> str:
    """The ERP as a base64 JPEG data URL, at most ``max_width`` wide."""
    with Image.open(path) as im:
        im.draft("RGB", (max_width, max_width // 2))
        im = im.convert("RGB")
        im.thumbnail((max_width, max_width))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_messages(item: JudgeItem, image_url: str | None) -> list[dict]:
    """The chat messages for one item."""
    refs = "\n".join(f"{i}. {r}" for i, r in enumerate(item.references, start=1))
    rubric = "\n".join(f"- {key} ({int(w * 100)}%): {what}" for key, w, what in RUBRIC)
    keys = ", ".join(f'"{k}": <1-5>' for k in CRITERIA)
    text = (
        f"Query: {item.query}\n\nReference captions:\n{refs}\n\n"
        f"Candidate caption:\n{item.prediction or '(empty)'}\n\n"
        f"Score the candidate from 1 (very poor) to 5 (excellent) on each criterion:\n{rubric}\n\n"
        f'Reply with only one JSON object: {{{keys}, "rationale": "<one sentence>"}}'
    )
    content: list[dict] = [{"type": "text", "text": text}]
    if image_url is not None:
        content.insert(0, {"type": "image_url", "image_url": {"url": image_url}})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def _post(cfg: JudgeConfig, messages: list[dict]) -> tuple[str, dict]:
    payload = {
        "model": cfg.model,
        "messages": messages,
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
    }
    if cfg.json_mode:
        payload["response_format"] = {"type": "json_object"}
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    url = cfg.base_url.rstrip("/") + "/chat/completions"
    request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        retryable = exc.code == 429 or exc.code >= 500
        raise _HTTPError(f"HTTP {exc.code} from {url}: {detail}", retryable) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise _HTTPError(f"cannot reach {url}: {exc}", True) from None
    except json.JSONDecodeError as exc:
        raise _HTTPError(f"{url} answered with invalid JSON: {exc}", True) from None
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _HTTPError(
            f"{url}: no choices[0].message.content in {str(body)[:300]}", True
        ) from None
    return content or "", body.get("usage") or {}


def _cost(cfg: JudgeConfig, usage: dict[str, int]) -> float | None:
    if cfg.price_in_per_mtok is None or cfg.price_out_per_mtok is None:
        return None
    return (
        usage["prompt_tokens"] * cfg.price_in_per_mtok
        + usage["completion_tokens"] * cfg.price_out_per_mtok
    ) / 1e6


def judge_one(
    cfg: JudgeConfig, item: JudgeItem, sleep: Callable[[float], None] = time.sleep
) -> dict:
    """Judge one item with retries; returns the result record (status ``ok`` or ``failed``)."""
    image_url = encode_image(item.image, cfg.image_max_width) if item.image else None
    messages = build_messages(item, image_url)
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    record = {
        "run": item.run,
        "sample_id": item.sample_id,
        "url": item.url,
        "query": item.query,
        "model": cfg.model,
        "image": str(item.image) if item.image else None,
    }
    error, raw, delay = "", None, cfg.backoff_s
    for attempt in range(1, cfg.max_retries + 2):
        try:
            raw, used = _post(cfg, messages)
        except _HTTPError as exc:
            error = str(exc)
            if not exc.retryable:
                break
            if attempt <= cfg.max_retries:
                sleep(delay)
                delay *= 2
            continue
        for key in usage:
            usage[key] += int(used.get(key, 0) or 0)
        try:
            scores = parse_judge_reply(raw)
        except JudgeParseError as exc:
            error = f"unparsable reply: {exc}"
            messages = [
                *messages,
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": f"That reply was invalid ({exc}). Reply with only the JSON object.",
                },
            ]
            continue
        return record | {
            "status": "ok",
            "scores": scores,
            "judge": judge_score(scores),
            "attempts": attempt,
            "usage": usage,
            "cost_usd": _cost(cfg, usage),
            "raw_reply": raw,
        }
    return record | {
        "status": "failed",
        "error": error,
        "attempts": attempt,
        "usage": usage,
        "cost_usd": _cost(cfg, usage),
        "raw_reply": raw,
    }


def items_from_files(
    predictions: str | Path,
    references: str | Path | None = None,
    *,
    images: str | Path | None = None,
    allow_missing: bool = False,
) -> list[JudgeItem]:
    """One item per (run, image, query) of a predictions file (grouped: all references shown).

    With ``images``, every item needs a local image (``ROOT/url`` or ``ROOT/<file name>``);
    without, the judge works from text only and records ``image: null``.
    """

    table = read_predictions(predictions)
    refs = read_references(references) if references is not None else None
    sets = build_sample_sets(table, refs, protocol="grouped", allow_missing=allow_missing)
    roots = [Path(images)] if images is not None else []
    items, missing = [], []
    for run, s in sets.items():
        for i, sid in enumerate(s.sample_ids):
            image = find_local_image(s.urls[i], roots) if roots else None
            if roots and image is None:
                missing.append(s.urls[i])
            items.append(
                JudgeItem(
                    run, sid, s.urls[i], s.queries[i], s.references[i], s.predictions[i], image
                )
            )
    if missing:
        uniq = sorted(set(missing))
        raise TableError(
            f"{len(uniq)} image(s) not found under {images}: {uniq[:5]}{' …' if len(uniq) > 5 else ''}; "
            "point --images at the folder holding them (ROOT/url or ROOT/<file name>)"
        )
    return items


def _load_results(path: Path) -> dict[tuple[str, str], dict]:
    latest: dict[tuple[str, str], dict] = {}
    if not path.is_file():
        return latest
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}:{number}: not a JSON line ({exc}); fix or move the file"
            ) from None
        latest[(rec["run"], rec["sample_id"])] = rec
    return latest


def judge_items(
    items: Sequence[JudgeItem],
    cfg: JudgeConfig,
    results_path: str | Path,
    *,
    progress: Callable[[dict], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Judge all items not already ``ok`` in ``results_path`` (JSONL, appended); returns the summary."""
    path = Path(results_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {k for k, rec in _load_results(path).items() if rec.get("status") == "ok"}
    todo = [it for it in items if (it.run, it.sample_id) not in done]
    lock = threading.Lock()
    with path.open("a", encoding="utf-8") as fh:

        def work(item: JudgeItem) -> None:
            rec = judge_one(cfg, item, sleep=sleep)
            with lock:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                fh.flush()
            if progress is not None:
                progress(rec)

        with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
            for future in [pool.submit(work, it) for it in todo]:
                future.result()
    wanted = {(it.run, it.sample_id) for it in items}
    summary = summarize_results(path, keys=wanted)
    summary["skipped_already_done"] = len(items) - len(todo)
    return summary


def summarize_results(path: str | Path, keys: set[tuple[str, str]] | None = None) -> dict:
    """Per run: mean judge score and criteria over ``ok`` items, failures, tokens and cost."""
    latest = _load_results(Path(path))
    runs: dict[str, dict] = defaultdict(
        lambda: {
            "ok": 0,
            "failed": 0,
            "judge": [],
            **{k: [] for k in CRITERIA},
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "cost_known": True,
        }
    )
    for key, rec in latest.items():
        if keys is not None and key not in keys:
            continue
        run = runs[rec["run"]]
        run["prompt_tokens"] += rec["usage"]["prompt_tokens"]
        run["completion_tokens"] += rec["usage"]["completion_tokens"]
        if rec.get("cost_usd") is None:
            run["cost_known"] = False
        else:
            run["cost_usd"] += rec["cost_usd"]
        if rec["status"] != "ok":
            run["failed"] += 1
            continue
        run["ok"] += 1
        run["judge"].append(rec["judge"])
        for k in CRITERIA:
            run[k].append(rec["scores"][k])
    out = {}
    for name, run in runs.items():
        mean = {k: (sum(run[k]) / len(run[k]) if run[k] else None) for k in ("judge", *CRITERIA)}
        out[name] = {
            "judge": mean["judge"],
            "criteria": {k: mean[k] for k in CRITERIA},
            "ok": run["ok"],
            "failed": run["failed"],
            "prompt_tokens": run["prompt_tokens"],
            "completion_tokens": run["completion_tokens"],
            "cost_usd": run["cost_usd"] if run["cost_known"] else None,
        }
    return {"runs": out, "results": str(path)}
