"""Writes test/fixtures/metrics/expected.json: metric inputs and the values sklearn and
MMSA's own code give for them. test/train/metrics.test.ts checks the TypeScript
metrics against this file.

Run:  /work/main/.venv/bin/python scripts/make_metric_fixtures.py [--out PATH]
Needs numpy and scikit-learn (requirements-test.txt). Deterministic: fixed seeds.

The regression functions below are transcriptions of
  MMSA        thuiar/MMSA  src/MMSA/utils/metricsTop.py  (__multiclass_acc,
              __eval_mosei_regression, __eval_sims_regression)
  MSE-Adapter utils/metricsTop.py (its __eval_sims_regression adds Mult_acc_2_weak and
              R_squre; read from the copy in wangzi1024/MSE-Adapter,
              EBlock-MSE-Qwen-1.8B/utils/metricsTop.py)
with torch tensors replaced by float64 numpy arrays. Two deliberate changes, both
marked below: MMSA's round(x, 4) on the MOSEI results is left out (the project keeps
full precision), and the Non0 metrics are NaN when every truth is 0 (MMSA raises an
IndexError there).
"""
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_score,
                             r2_score, recall_score)

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "metrics" / "expected.json"


# ---- MMSA / MSE-Adapter transcription -------------------------------------------------

def multiclass_acc(y_pred, y_true):
    return np.sum(np.round(y_pred) == np.round(y_true)) / float(len(y_true))


def eval_mosei_regression(y_pred, y_true):
    test_preds = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    test_truth = np.asarray(y_true, dtype=np.float64).reshape(-1)

    test_preds_a7 = np.clip(test_preds, a_min=-3., a_max=3.)
    test_truth_a7 = np.clip(test_truth, a_min=-3., a_max=3.)
    test_preds_a5 = np.clip(test_preds, a_min=-2., a_max=2.)
    test_truth_a5 = np.clip(test_truth, a_min=-2., a_max=2.)

    mae = np.mean(np.absolute(test_preds - test_truth))
    corr = np.corrcoef(test_preds, test_truth)[0][1]
    mult_a7 = multiclass_acc(test_preds_a7, test_truth_a7)
    mult_a5 = multiclass_acc(test_preds_a5, test_truth_a5)

    non_zeros = np.array([i for i, e in enumerate(test_truth) if e != 0])
    if len(non_zeros) == 0:
        # Project change: MMSA indexes with an empty float array here and raises.
        non_zeros_acc2 = non_zeros_f1_score = math.nan
    else:
        non_zeros_binary_truth = (test_truth[non_zeros] > 0)
        non_zeros_binary_preds = (test_preds[non_zeros] > 0)
        non_zeros_acc2 = accuracy_score(non_zeros_binary_preds, non_zeros_binary_truth)
        non_zeros_f1_score = f1_score(non_zeros_binary_truth, non_zeros_binary_preds, average='weighted')

    binary_truth = (test_truth >= 0)
    binary_preds = (test_preds >= 0)
    acc2 = accuracy_score(binary_preds, binary_truth)
    f_score = f1_score(binary_truth, binary_preds, average='weighted')

    # Project change: MMSA returns round(x, 4) of each value.
    return {
        "Has0_acc_2": acc2,
        "Has0_F1_score": f_score,
        "Non0_acc_2": non_zeros_acc2,
        "Non0_F1_score": non_zeros_f1_score,
        "Mult_acc_5": mult_a5,
        "Mult_acc_7": mult_a7,
        "MAE": mae,
        "Corr": corr,
    }


def eval_sims_regression(y_pred, y_true):
    test_preds = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    test_truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    test_preds = np.clip(test_preds, a_min=-1., a_max=1.)
    test_truth = np.clip(test_truth, a_min=-1., a_max=1.)

    # MSE-Adapter: weak sentiment two classes
    ms_2 = [-1.01, 0.0, 1.01]
    weak_index_l = np.where(test_truth >= -0.4)[0]
    weak_index_r = np.where(test_truth <= 0.4)[0]
    weak_index = [x for x in weak_index_l if x in weak_index_r]
    test_preds_weak = test_preds[weak_index]
    test_truth_weak = test_truth[weak_index]
    test_preds_a2_weak = test_preds_weak.copy()
    test_truth_a2_weak = test_truth_weak.copy()
    for i in range(2):
        test_preds_a2_weak[np.logical_and(test_preds_weak > ms_2[i], test_preds_weak <= ms_2[i + 1])] = i
    for i in range(2):
        test_truth_a2_weak[np.logical_and(test_truth_weak > ms_2[i], test_truth_weak <= ms_2[i + 1])] = i

    # two classes{[-1.0, 0.0], (0.0, 1.0]}
    ms_2 = [-1.01, 0.0, 1.01]
    test_preds_a2 = test_preds.copy()
    test_truth_a2 = test_truth.copy()
    for i in range(2):
        test_preds_a2[np.logical_and(test_preds > ms_2[i], test_preds <= ms_2[i + 1])] = i
    for i in range(2):
        test_truth_a2[np.logical_and(test_truth > ms_2[i], test_truth <= ms_2[i + 1])] = i

    # three classes{[-1.0, -0.1], (-0.1, 0.1], (0.1, 1.0]}
    ms_3 = [-1.01, -0.1, 0.1, 1.01]
    test_preds_a3 = test_preds.copy()
    test_truth_a3 = test_truth.copy()
    for i in range(3):
        test_preds_a3[np.logical_and(test_preds > ms_3[i], test_preds <= ms_3[i + 1])] = i
    for i in range(3):
        test_truth_a3[np.logical_and(test_truth > ms_3[i], test_truth <= ms_3[i + 1])] = i

    # five classes{[-1.0, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1.0]}
    ms_5 = [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    test_preds_a5 = test_preds.copy()
    test_truth_a5 = test_truth.copy()
    for i in range(5):
        test_preds_a5[np.logical_and(test_preds > ms_5[i], test_preds <= ms_5[i + 1])] = i
    for i in range(5):
        test_truth_a5[np.logical_and(test_truth > ms_5[i], test_truth <= ms_5[i + 1])] = i

    mae = np.mean(np.absolute(test_preds - test_truth))
    corr = np.corrcoef(test_preds, test_truth)[0][1]
    mult_a2 = multiclass_acc(test_preds_a2, test_truth_a2)
    mult_a2_weak = multiclass_acc(test_preds_a2_weak, test_truth_a2_weak)
    mult_a3 = multiclass_acc(test_preds_a3, test_truth_a3)
    mult_a5 = multiclass_acc(test_preds_a5, test_truth_a5)
    f_score = f1_score(test_truth_a2, test_preds_a2, average='weighted')
    r2 = r2_score(test_truth, test_preds)

    return {
        "Mult_acc_2": mult_a2,
        "F1_score": f_score,
        "Mult_acc_2_weak": mult_a2_weak,
        "MAE": mae,
        "Corr": corr,
        "Mult_acc_3": mult_a3,
        "Mult_acc_5": mult_a5,
        "R_squre": r2,
    }


# ---- classification (sklearn, as src/train/metrics/classification.ts documents) -------

def metric_key_part(name):
    # MLflow's key rule is the Python regex [\w.\- /] with Unicode \w.
    return re.sub(r"[^\w.\- /]", "_", name.strip())


def eval_classification(pred, truth, num_classes, label_names=None):
    labels = list(range(num_classes))
    out = {
        "acc": accuracy_score(truth, pred),
        "weighted_f1": f1_score(truth, pred, average="weighted"),
        "macro_f1": f1_score(truth, pred, average="macro"),
        "weighted_precision": precision_score(truth, pred, average="weighted"),
        "weighted_recall": recall_score(truth, pred, average="weighted"),
    }
    per_class = f1_score(truth, pred, labels=labels, average=None)
    for i, f in enumerate(per_class):
        name = str(i) if label_names is None else metric_key_part(label_names[i])
        out[f"f1_{name}"] = f
    return out


# ---- cases ---------------------------------------------------------------------------

MELD = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
CHERMA = ["愤怒", "厌恶", "恐惧", "高兴", "平静", "悲伤", "惊奇"]


def classification_cases():
    rng = np.random.default_rng(1111)
    meld_p = np.array([0.47, 0.12, 0.03, 0.07, 0.16, 0.03, 0.12])
    cases = []

    def add(name, pred, truth, k, names=None):
        cases.append({"name": name, "numClasses": k, "labelNames": names,
                      "pred": [int(v) for v in pred], "truth": [int(v) for v in truth]})

    add("one sample, right", [3], [3], 7, MELD)
    add("one sample, wrong", [2], [5], 7)
    add("single-class truth", rng.integers(0, 4, 40), [3] * 40, 7, MELD)
    add("classes missing from both", rng.choice([0, 1, 2, 4], 60), rng.choice([0, 1, 2, 4], 60), 7, CHERMA)
    add("class only predicted", list(rng.choice([0, 1], 30)) + [5, 5], list(rng.choice([0, 1], 32)), 7)
    add("class never predicted", list(rng.choice([0, 1], 30)), list(rng.choice([0, 1], 28)) + [6, 6], 7)
    t = rng.choice(7, 50, p=meld_p)
    add("perfect", t, t, 7, MELD)
    t = rng.choice(7, 500, p=meld_p)
    p = np.where(rng.random(500) < 0.6, t, rng.choice(7, 500, p=meld_p))
    add("meld-like, 500", p, t, 7, MELD)
    t = rng.choice(7, 137)
    p = np.where(rng.random(137) < 0.4, t, rng.choice(7, 137))
    add("uniform, 137", p, t, 7, CHERMA)
    add("binary, 20", rng.integers(0, 2, 20), rng.integers(0, 2, 20), 2)
    add("constant prediction", [0] * 100, rng.choice(7, 100, p=meld_p), 7, MELD)
    add("three classes, 9", [0, 0, 1, 1, 2, 2, 0, 1, 2], [0, 1, 1, 2, 2, 0, 0, 1, 1], 3, ["neg", "neu", "pos"])
    add("one class", [0] * 5, [0] * 5, 1, ["only"])
    add("odd names", [0, 1, 2, 1], [0, 1, 1, 2], 3, ["happy/excited", "a+b (x)", "  sad  "])
    for c in cases:
        c["expected"] = eval_classification(c["pred"], c["truth"], c["numClasses"], c["labelNames"])
        c["confusion"] = confusion_matrix(c["truth"], c["pred"], labels=list(range(c["numClasses"]))).tolist()
    return cases


def mosei_cases():
    rng = np.random.default_rng(2222)
    cases = []

    def add(name, pred, truth):
        cases.append({"name": name, "pred": [float(v) for v in pred], "truth": [float(v) for v in truth]})

    def thirds(n, scale=1.2):
        return np.clip(np.round(rng.normal(0.2, scale, n) * 3) / 3, -3, 3)

    def decimals(x):
        return np.round(x, 1)

    add("one sample", [0.4], [1.0])
    add("two samples", [-0.3, 1.2], [-1.0, 2.0])
    t = thirds(500)
    add("mosei-like, 500", decimals(t + rng.normal(0, 0.6, 500)), t)
    ties = [0.5, 1.5, -2.5, 2.5, -0.5, -1.5, 0.0, -0.0, 2.5, 3.5]
    add("rounding ties", ties, ties[::-1])
    add("half ties against integers", [0.5, 1.5, -2.5, -0.5, 1.5, 2.5], [0.0, 2.0, -2.0, 0.0, 1.0, 3.0])
    add("out of range", [3.7, -4.0, 5.0, -2.6, 2.4, -3.1, 10.0], [3.0, -3.0, 2.9, -2.0, 3.5, -5.0, -1.0])
    t = np.array([0.0] * 10 + list(thirds(30)))
    add("many zeros", decimals(np.concatenate([[0.0, -0.0, 0.1, -0.1, 0.0], rng.normal(0, 1, 35)])), t)
    add("all truth zero", decimals(rng.normal(0, 1, 12)), [0.0] * 12)
    add("constant prediction", [0.0] * 25, thirds(25))
    add("single-class truth", decimals(rng.normal(0, 1, 30)), np.abs(thirds(30)) + 1 / 3)
    t = thirds(64)
    add("perfect", t, t)
    t = thirds(333, 2.0)
    add("uniform ties, 333", decimals(rng.uniform(-3.5, 3.5, 333)), t)
    add("all negative, 9", -np.abs(decimals(rng.normal(0, 1, 9))) - 0.1, -np.abs(thirds(9)) - 1 / 3)
    t = thirds(129)
    add("pairwise sum block, 129", t + rng.normal(0, 0.3, 129), t)
    for c in cases:
        c["expected"] = eval_mosei_regression(c["pred"], c["truth"])
    return cases


def sims_cases():
    rng = np.random.default_rng(3333)
    cases = []

    def add(name, pred, truth):
        cases.append({"name": name, "pred": [float(v) for v in pred], "truth": [float(v) for v in truth]})

    def fifths(n):
        return np.clip(np.round(rng.normal(0.0, 0.5, n) * 5) / 5, -1, 1)

    def decimals(x):
        return np.round(x, 1)

    edges = [-1.0, -0.7, -0.4, -0.1, 0.0, -0.0, 0.1, 0.4, 0.7, 1.0]
    add("one sample", [0.1], [-0.2])
    add("two samples", [0.3, -0.5], [0.2, -0.6])
    add("bin edges", edges, edges[::-1])
    add("bin edges against neighbours", edges, [-0.9, -0.6, -0.5, 0.0, 0.1, 0.1, 0.2, 0.3, 0.8, 0.9])
    add("out of range", [1.5, -3.0, 2.0, -1.2, 0.9, 1.0], [1.0, -1.0, -2.0, 3.0, 1.7, 0.95])
    t = fifths(500)
    add("sims-like, 500", decimals(np.clip(t + rng.normal(0, 0.35, 500), -1.2, 1.2)), t)
    add("no weak truth", decimals(rng.normal(0, 0.5, 20)), rng.choice([-1.0, -0.8, 0.6, 1.0], 20))
    add("all weak truth", decimals(rng.normal(0, 0.5, 40)), rng.choice([-0.4, -0.2, 0.0, 0.2, 0.4], 40))
    add("constant truth, imperfect", decimals(rng.normal(0, 0.5, 15)), [0.5] * 15)
    add("constant truth, perfect", [0.5] * 6, [0.5] * 6)
    add("constant prediction", [0.0] * 30, fifths(30))
    t = fifths(77)
    add("perfect", t, t)
    add("single bin", decimals(rng.uniform(0.15, 1.5, 25)), decimals(rng.uniform(0.2, 1.0, 25)))
    add("continuous, 257", rng.uniform(-1.3, 1.3, 257), rng.uniform(-1, 1, 257))
    for c in cases:
        c["expected"] = eval_sims_regression(c["pred"], c["truth"])
    return cases


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, (float, np.floating)):
        # JSON has no NaN: null stands for it.
        return None if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def main():
    import warnings
    warnings.simplefilter("ignore")  # sklearn/numpy warn on the zero-division cases on purpose
    data = {
        "generator": "scripts/make_metric_fixtures.py",
        "versions": {"numpy": np.__version__, "sklearn": sklearn.__version__,
                     "python": sys.version.split()[0]},
        "classification": classification_cases(),
        "mosei": mosei_cases(),
        "sims": sims_cases(),
    }
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
