"""The Java parts of caption evaluation, driven with the jars shipped inside pycocoevalcap.

* :func:`ptb_tokenize`: the Stanford PTB tokenizer exactly as pycocoevalcap's ``PTBTokenizer``
  calls it (``-preserveLines -lowerCase``, punctuation tokens removed), but in a temporary
  directory, with line separators that would break the line alignment replaced by spaces and a
  check that every input line comes back.
* :class:`MeteorProcess`: METEOR 1.5 over its ``-stdio`` protocol with the same flags as
  pycocoevalcap (``-l en -norm``). A writer thread feeds stdin while the caller reads stdout and a
  third thread drains stderr, so no pipe can fill up and block both sides (pycocoevalcap's wrapper
  writes line by line with stderr never read and has deadlocked on large inputs).
* :func:`spice_status` / :func:`run_spice`: SPICE only when the Stanford CoreNLP 3.6.0 jars are
  present. We never trigger pycocoevalcap's download.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pycocoevalcap.bleu import bleu as _pycoco_bleu

__all__ = [
    "PTB_PUNCTUATION",
    "JavaError",
    "MeteorProcess",
    "MeteorResult",
    "SpiceStatus",
    "java_version",
    "meteor_line",
    "ptb_tokenize",
    "run_spice",
    "spice_status",
]

PYCOCO_DIR = Path(_pycoco_bleu.__file__).resolve().parents[1]  # a namespace package
PTB_JAR = PYCOCO_DIR / "tokenizer" / "stanford-corenlp-3.4.1.jar"
METEOR_JAR = PYCOCO_DIR / "meteor" / "meteor-1.5.jar"
SPICE_JAR = PYCOCO_DIR / "spice" / "spice-1.0.jar"
SPICE_LIB = PYCOCO_DIR / "spice" / "lib"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_ENV = "PANOLLAVA_CORENLP_DIR"

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS
PTB_PUNCTUATION = frozenset(
    [
        "''",
        "'",
        "``",
        "`",
        "-LRB-",
        "-RRB-",
        "-LCB-",
        "-RCB-",
        ".",
        "?",
        "!",
        ",",
        ":",
        "-",
        "--",
        "...",
        ";",
    ]
)
# Characters Java or Python treat as line breaks; inside a caption they would shift every later line.
_LINE_BREAKS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Java ≥ 16 closes these packages to reflection; SPICE's serialisation libraries need them.
SPICE_ADD_OPENS = (
    "java.base/java.lang",
    "java.base/java.util",
    "java.base/java.math",
    "java.base/java.util.concurrent",
    "java.base/java.net",
    "java.base/java.text",
    "java.base/java.io",
    "java.base/java.nio",
)


class JavaError(RuntimeError):
    """A Java evaluation tool is missing or failed; the message says what to do."""


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise JavaError(
            "`java` not found on PATH: the PTB tokenizer, METEOR and SPICE need Java ≥ 8 "
            "(e.g. apt-get install openjdk-17-jre-headless)"
        )
    return java


@cache
def java_version() -> tuple[int, str]:
    """(major version, first line of ``java -version``)."""
    out = subprocess.run([_java(), "-version"], capture_output=True, text=True, check=True)
    line = (out.stderr or out.stdout).strip().splitlines()[0]
    match = re.search(r'version "(\d+)(?:\.(\d+))?', line)
    if match is None:
        raise JavaError(f"cannot parse the Java version from {line!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" -> 8
        major = int(match.group(2))
    return major, line


def _clean_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Tokenize captions as pycocoevalcap does: lower-cased PTB tokens without punctuation.

    Characters the tokenizer cannot represent (e.g. emoji) are dropped by it; an empty or
    punctuation-only caption becomes ``""``.
    """
    if not texts:
        return []
    body = "\n".join(_clean_line(t) for t in texts)
    cmd = [_java(), "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer"]
    cmd += ["-preserveLines", "-lowerCase"]
    with tempfile.TemporaryDirectory(prefix="panollava_ptb_") as tmp:
        src = Path(tmp) / "captions.txt"
        src.write_text(body, encoding="utf-8")
        proc = subprocess.run([*cmd, str(src)], capture_output=True, check=False)
    if proc.returncode != 0:
        raise JavaError(f"PTB tokenizer failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "" and len(lines) == len(texts) + 1:
        lines = lines[:-1]
    if len(lines) != len(texts):
        raise JavaError(f"PTB tokenizer returned {len(lines)} lines for {len(texts)} captions")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION) for line in lines
    ]


def meteor_line(hypothesis: str, references: Sequence[str]) -> str:
    """The ``SCORE`` line pycocoevalcap's Meteor sends (``|||`` removed from the texts)."""
    hyp = hypothesis.replace("|||", "").replace("  ", " ")
    refs = [r.replace("|||", "") for r in references]
    return " ||| ".join(("SCORE", " ||| ".join(refs), hyp))


@dataclass(frozen=True)
class MeteorResult:
    score: float  # corpus METEOR (from the summed statistics, as the jar computes it)
    scores: list[float]  # per sample
    stats: list[list[float]]  # per sample: the jar's 23 sufficient statistics


class MeteorProcess:
    """One METEOR 1.5 JVM (``-stdio``); reuse it for several runs, then :meth:`close` it."""

    def __init__(self, *, max_heap: str = "2G", timeout_s: float | None = 3600.0) -> None:
        if not METEOR_JAR.is_file():
            raise JavaError(f"METEOR jar missing: {METEOR_JAR} (reinstall pycocoevalcap==1.2)")
        cmd = [_java(), f"-Xmx{max_heap}", "-Dfile.encoding=UTF-8", "-jar", str(METEOR_JAR)]
        cmd += ["-", "-", "-stdio", "-l", "en", "-norm"]
        self.timeout_s = timeout_s
        self._proc = subprocess.Popen(
            cmd,
            cwd=METEOR_JAR.parent,  # the paraphrase table is found relative to the jar
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self._lock = threading.Lock()

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())

    def _exchange(self, lines: list[str], n_replies: int) -> list[str]:
        """Write ``lines`` from a thread while reading ``n_replies`` reply lines."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        write_error: list[BaseException] = []

        def write() -> None:
            try:
                for line in lines:
                    proc.stdin.write(line.encode("utf-8") + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                write_error.append(exc)

        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        writer = threading.Thread(target=write, daemon=True)
        watchdog = threading.Timer(self.timeout_s, kill) if self.timeout_s else None
        writer.start()
        if watchdog is not None:
            watchdog.start()
        replies = []
        try:
            for _ in range(n_replies):
                raw = proc.stdout.readline()
                if not raw:
                    proc.wait(timeout=10)
                    self._stderr_thread.join(timeout=2)  # collect its last words
                    why = f"timed out after {self.timeout_s} s" if timed_out.is_set() else "exited"
                    tail = "\n".join(self._stderr)
                    raise JavaError(f"METEOR {why} after {len(replies)} replies; stderr:\n{tail}")
                replies.append(raw.decode("utf-8").strip())
        finally:
            if watchdog is not None:
                watchdog.cancel()
            writer.join(timeout=5)
        if write_error:
            raise JavaError(f"writing to METEOR failed: {write_error[0]}")
        return replies

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> MeteorResult:
        """METEOR of tokenized hypotheses against their tokenized references."""
        if len(hypotheses) != len(references) or not hypotheses:
            raise ValueError("need the same, non-zero number of hypotheses and reference lists")
        with self._lock:
            lines = [meteor_line(h, r) for h, r in zip(hypotheses, references, strict=True)]
            stats = self._exchange(lines, len(lines))
            evaluated = self._exchange(["EVAL ||| " + " ||| ".join(stats)], len(stats) + 1)
        return MeteorResult(
            score=float(evaluated[-1]),
            scores=[float(v) for v in evaluated[:-1]],
            stats=[[float(v) for v in s.split()] for s in stats],
        )

    def close(self) -> None:
        """Stop the JVM."""
        if self._proc.poll() is None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> MeteorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class SpiceStatus:
    available: bool
    reason: str  # why not, and how to enable it (empty when available)
    corenlp_dir: Path | None = None


def _corenlp_candidates(corenlp_dir: str | Path | None) -> list[Path]:
    if corenlp_dir is not None:
        return [Path(corenlp_dir)]
    dirs = []
    if os.environ.get(CORENLP_ENV):
        dirs.append(Path(os.environ[CORENLP_ENV]))
    dirs.append(SPICE_LIB)
    return dirs


def spice_status(corenlp_dir: str | Path | None = None) -> SpiceStatus:
    """Whether SPICE can run: Java plus the CoreNLP 3.6.0 jars in ``corenlp_dir`` (or
    ``$PANOLLAVA_CORENLP_DIR``, or pycocoevalcap's ``spice/lib``). Nothing is downloaded."""
    dirs = _corenlp_candidates(corenlp_dir)
    for d in dirs:
        if all((d / name).is_file() for name in CORENLP_JARS):
            if not SPICE_JAR.is_file():
                return SpiceStatus(False, f"SPICE jar missing: {SPICE_JAR}")
            return SpiceStatus(True, "", d)
    where = ", ".join(str(d) for d in dirs)
    return SpiceStatus(
        False,
        f"Stanford CoreNLP 3.6.0 jars ({' and '.join(CORENLP_JARS)}) not found in {where}. "
        "To enable SPICE, copy both jars from stanford-corenlp-full-2015-12-09.zip into a folder "
        f"and pass --corenlp-dir FOLDER (or set {CORENLP_ENV}); they are not downloaded here.",
    )


def spice_command(
    in_file: Path, out_file: Path, corenlp_dir: Path, *, java_major: int, max_heap: str = "8G"
) -> list[str]:
    """The SPICE command line: explicit classpath, ``--add-opens`` on Java ≥ 16, no cache."""
    jars = [SPICE_JAR, *sorted(SPICE_LIB.glob("*.jar")), *(corenlp_dir / n for n in CORENLP_JARS)]
    cmd = [_java(), f"-Xmx{max_heap}", "-Dfile.encoding=UTF-8"]
    if java_major >= 16:
        for package in SPICE_ADD_OPENS:
            cmd += ["--add-opens", f"{package}=ALL-UNNAMED"]
    cmd += ["-cp", os.pathsep.join(str(j) for j in jars), "edu.anu.spice.SpiceScorer"]
    return [*cmd, str(in_file), "-out", str(out_file), "-subset", "-silent"]


def run_spice(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], corenlp_dir: Path
) -> tuple[float, list[float]]:
    """SPICE F-scores (corpus mean as in pycocoevalcap, per sample; NaN where SPICE gives none)."""
    major, _ = java_version()
    data = [
        {"image_id": i, "test": h, "refs": list(r)}
        for i, (h, r) in enumerate(zip(hypotheses, references, strict=True))
    ]
    with tempfile.TemporaryDirectory(prefix="panollava_spice_") as tmp:
        in_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_file.write_text(json.dumps(data), encoding="utf-8")
        cmd = spice_command(in_file, out_file, corenlp_dir, java_major=major)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise JavaError(f"SPICE failed ({proc.returncode}): {proc.stderr[-3000:]}")
        results = json.loads(out_file.read_text(encoding="utf-8"))
    by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}
    scores = []
    for i in range(len(data)):
        value = by_id.get(i)
        scores.append(float(value) if isinstance(value, int | float) else float("nan"))
    return float(sum(scores) / len(scores)), scores
