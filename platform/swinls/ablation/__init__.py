"""The paper's ablations as Ray Tune grids: a trial per row, model and seed (`jobs/ablate.py`)."""

from swinls.ablation.tables import TABLES, AblationError, Table, select_rows

__all__ = ["TABLES", "AblationError", "Table", "select_rows"]
