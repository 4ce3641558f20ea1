"""Benchmark pipelines whose steps do what real ones do: import pandas and scikit-learn, pass DataFrames.

The trivial example pipelines measure an orchestrator's own cost; real
pipelines also pay for their imports and for serialising their data in every
step container. The benchmark copies this file into its project folder
(ZenML's source root), so that step containers get it with the pipeline's
code, as they get a user's module, and builds the image with ZenML's pandas
and scikit-learn integrations, as a user's image would be built.
"""

import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from zenml import pipeline, step

# benchmarks/zenml_side.py's ML_LIBRARIES lists the modules imported above.



@step
def make_frame(rows: int = 2000, features: int = 12) -> pd.DataFrame:
    """A labelled table of numbers."""
    values, labels = make_classification(n_samples=rows, n_features=features,
                                         n_informative=6, random_state=0)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])
    frame["label"] = labels
    return frame


@step
def scale(frame: pd.DataFrame) -> pd.DataFrame:
    """Every feature to mean 0 and variance 1."""
    features = frame.drop(columns="label")
    scaled = pd.DataFrame(StandardScaler().fit_transform(features), columns=features.columns)
    scaled["label"] = frame["label"].to_numpy()
    return scaled


@step
def add_products(frame: pd.DataFrame) -> pd.DataFrame:
    """Products of neighbouring features, as new columns."""
    result = frame.copy()
    names = [c for c in frame.columns if c != "label"]
    for left, right in zip(names, names[1:]):
        result[f"{left}x{right}"] = frame[left] * frame[right]
    return result


@step
def drop_weak(frame: pd.DataFrame, keep: int = 16) -> pd.DataFrame:
    """Only the features most correlated with the label."""
    correlation = frame.corr()["label"].drop("label").abs().sort_values(ascending=False)
    return frame[[*correlation.index[:keep], "label"]]


@step
def shuffle_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows in another order."""
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


@step
def fit_score(frame: pd.DataFrame, c: float = 1.0) -> float:
    """Held-out accuracy of a logistic regression."""
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    model = LogisticRegression(C=c, max_iter=500)
    model.fit(train.drop(columns="label"), train["label"])
    return float(model.score(test.drop(columns="label"), test["label"]))


@step
def best_of(a: float, b: float, c: float, d: float, e: float, f: float) -> float:
    """The best of six accuracies."""
    return max(a, b, c, d, e, f)


@pipeline(enable_cache=False)
def ml_chain_pipeline() -> None:
    """Six steps in a row, each taking the DataFrame of the one before."""
    frame = make_frame()
    frame = scale(frame)
    frame = add_products(frame)
    frame = drop_weak(frame)
    frame = shuffle_rows(frame)
    fit_score(frame)


@pipeline(enable_cache=False)
def ml_fan_out_pipeline() -> None:
    """One table, six models fitted at the same time, the best one kept."""
    frame = make_frame()
    scores = [fit_score(frame, c=c, id=f"fit_{i}")
              for i, c in enumerate((0.01, 0.03, 0.1, 0.3, 1.0, 3.0))]
    best_of(*scores)
