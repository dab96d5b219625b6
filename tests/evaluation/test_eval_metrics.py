"""Our metrics against direct pycocoevalcap calls on the same tokenized inputs (golden values are
computed here by pycocoevalcap itself)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from panollava.evaluation.javatools import (
    CORENLP_JARS,
    JavaError,
    MeteorProcess,
    ptb_tokenize,
    spice_command,
    spice_status,
)
from panollava.evaluation.metrics import (
    ALL_METRICS,
    bleu_from_stats,
    corpus_from_weights,
    meteor_from_stats,
    meteor_summable,
    score_captions,
    tokenize_samples,
)

# (prediction, references): ordinary captions plus the edge cases the scorer must survive
CASES = [
    (
        "There is a red car parked next to the old barn.",
        ["An old car is in the barn.", "A red car."],
    ),
    ("Two people are talking near the fountain.", ["Some people stand by a fountain, talking."]),
    ("", ["The sky is clear and blue."]),  # empty prediction
    ("😀😀 🚗", ["A car drives down the road."]),  # emoji only
    (
        "Café naïve façade — “quoted” crème brûlée…",
        ["A café with a naïve façade.", "Crème brûlée."],
    ),
    ("東京タワー is tall.", ["The Tokyo tower is tall."]),  # CJK
    ("... !", ["Nothing but punctuation here."]),  # tokenizes to nothing
    ("The building has many windows.", ["The building has many windows."]),  # perfect match
    ("A ||| pipe and\nnew line", ["a pipe and new line", "pipes"]),
]


def _pycoco_scores(hyps, refs, meteor):
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    out = {}
    bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        out[f"BLEU-{k + 1}"] = (bleu[k], np.asarray(bleu_each[k]))
    out["METEOR"] = meteor.compute_score(gts, res)
    out["ROUGE-L"] = Rouge().compute_score(gts, res)
    out["CIDEr"] = Cider().compute_score(gts, res)
    return out


def test_tokenizer_matches_pycocoevalcap():
    texts = [c[0] for c in CASES if "\n" not in c[0] and "😀" not in c[0]]
    texts += [r for c in CASES for r in c[1]]
    ours = ptb_tokenize(texts)
    theirs = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    assert ours == [theirs[i][0] for i in range(len(texts))]
    assert ours[0] == "there is a red car parked next to the old barn"


def test_line_separators_do_not_shift_lines():
    texts = ["first\u2028half", "second\rline", "third\x85", "", "last one."]
    assert ptb_tokenize(texts) == ["first half", "second line", "third", "", "last one"]


def test_scores_equal_pycocoevalcap(pycoco_meteor):
    preds, refs = [c[0] for c in CASES], [c[1] for c in CASES]
    with MeteorProcess() as meteor:
        ours = score_captions(preds, refs, meteor=meteor)
        again = meteor.score(["a dog", "a cat on a mat"], [["a dog runs"], ["a cat on the mat"]])
        alone = meteor.score(["a cat on a mat"], [["a cat on the mat"]])
    assert again.scores[1] == alone.scores[0] and len(again.stats[0]) == 23  # process reusable
    hyps_tok, refs_tok = tokenize_samples(preds, refs)
    assert hyps_tok[2] == "" and hyps_tok[6] == ""
    gold = _pycoco_scores(hyps_tok, refs_tok, pycoco_meteor)
    for name, (corpus, per_sample) in gold.items():
        assert ours.corpus[name] == pytest.approx(corpus, abs=1e-12), name
        np.testing.assert_allclose(ours.per_sample[name], per_sample, atol=1e-12, err_msg=name)
    assert ours.per_sample["CIDEr"][2] == 0.0 and ours.per_sample["METEOR"][2] == 0.0
    assert "SPICE" not in ours.corpus and "CoreNLP" in ours.unavailable["SPICE"]
    # the bootstrap aggregators reproduce the corpus scores from the sufficient statistics
    full = corpus_from_weights(ours, np.ones((1, len(preds))))
    for name in ours.metrics:
        assert full[name][0] == pytest.approx(ours.corpus[name], abs=1e-12), name
    np.testing.assert_allclose(meteor_from_stats(ours.meteor_stats), ours.per_sample["METEOR"])


def test_meteor_aggregate_skips_chunks_of_perfect_matches():
    stats = np.zeros((2, 23))
    stats[0, [0, 1, 4, 5, 20, 21, 22]] = [3, 3, 3, 3, 1, 3, 3]  # perfect 3-word match
    stats[1, [0, 1, 4, 5, 20, 21, 22]] = [4, 4, 2, 2, 2, 2, 2]
    assert meteor_summable(stats)[:, 20].tolist() == [0.0, 2.0]
    assert meteor_from_stats(stats[0]) == pytest.approx(1.0)
    assert bleu_from_stats(np.array([5, 5, 5, 4, 3, 2, 5, 4, 3, 2])).tolist() == pytest.approx(
        [1.0] * 4
    )


def test_spice_unavailable_says_why_and_how(tmp_path):
    status = spice_status(tmp_path)
    assert not status.available
    assert "stanford-corenlp-3.6.0-models.jar" in status.reason
    assert "--corenlp-dir" in status.reason and str(tmp_path) in status.reason
    ours = score_captions(["a car"], [["a red car"]], metrics=["SPICE"], corenlp_dir=tmp_path)
    assert ours.corpus == {} and "SPICE" in ours.unavailable  # never a number under SPICE


def test_spice_command_with_jars_present(tmp_path):
    for name in CORENLP_JARS:
        (tmp_path / name).write_bytes(b"")
    status = spice_status(tmp_path)
    assert status.available and status.corenlp_dir == tmp_path
    cmd = spice_command(tmp_path / "in.json", tmp_path / "out.json", tmp_path, java_major=17)
    assert "--add-opens" in cmd and "java.base/java.lang=ALL-UNNAMED" in cmd
    assert "-cache" not in cmd and "edu.anu.spice.SpiceScorer" in cmd
    classpath = cmd[cmd.index("-cp") + 1]
    assert all(name in classpath for name in CORENLP_JARS)
    old = spice_command(tmp_path / "in.json", tmp_path / "out.json", tmp_path, java_major=11)
    assert "--add-opens" not in old


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="valid"):
        score_captions(["a"], [["b"]], metrics=["BLEURT"])
    assert ALL_METRICS[-1] == "SPICE"


def test_meteor_timeout_is_a_clear_error():
    meteor = MeteorProcess(timeout_s=1.0)  # the JVM needs longer than this to load its tables
    with pytest.raises(JavaError, match=r"timed out after 1\.0 s"):
        meteor.score(["a cat"], [["a dog"]])
    meteor.close()
