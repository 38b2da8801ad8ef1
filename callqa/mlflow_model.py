"""The MLflow ``pyfunc`` face of a callqa model: a DataFrame of call JSON in, results JSON out.

Every registered version stores its model directory (``model.json`` + ``weights.pt``) as the
pyfunc artifact ``model_dir``; callqa itself loads that directory directly (``callqa.models``),
and anything that speaks MLflow can ``mlflow.pyfunc.load_model`` the version and predict.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from callqa.modelfiles import model_type
from callqa.schemas import Call

ARTIFACT = "model_dir"


class CallqaPyfunc(mlflow.pyfunc.PythonModel):
    """Column ``call`` (a Call as JSON) → column ``result`` (the CallResult as JSON)."""

    def load_context(self, context: Any) -> None:
        from callqa.models import pipeline_for_model_dir

        path = context.artifacts[ARTIFACT]
        self.kind = model_type(path)
        self.pipeline = pipeline_for_model_dir(path)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        out = []
        for raw in model_input["call"]:
            call = Call.model_validate_json(raw)
            out.append(self.pipeline.analyze(call).model_dump_json(exclude_none=True))
        return pd.DataFrame({"result": out})
