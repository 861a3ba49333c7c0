"""The paper's reference numbers (da Silva, SAC'26), in one place.

Every table that sets our results next to the paper's reads these constants:
Table 4 (the last five training epochs), Table 5 (test metrics, original units) and
Table 6 (re-synthesis means on the NSynth test split). Values are copied from the
paper as printed (4 decimals, 3 for Table 6's first columns).
"""

from __future__ import annotations

#: Table 4: losses and metrics of epochs 41-45, on standardised targets
#: (loss = MSE + L2 penalty; mse and mae dimensionless).
PAPER_TABLE4: dict[str, list[float]] = {
    "epoch": [41, 42, 43, 44, 45],
    "loss": [0.5988, 0.5926, 0.5896, 0.5855, 0.5815],
    "mse": [0.5455, 0.5389, 0.5350, 0.5296, 0.5241],
    "mae": [0.5265, 0.5213, 0.5189, 0.5165, 0.5129],
    "val_loss": [0.6547, 0.6578, 0.6555, 0.6790, 0.6744],
    "val_mse": [0.6013, 0.6035, 0.6006, 0.6218, 0.6168],
    "val_mae": [0.5410, 0.5521, 0.5348, 0.5581, 0.5512],
}

#: Table 5: test metrics pooled over the 15 parameters in original units (so
#: dominated by the carrier, Hz).
PAPER_TABLE5: dict[str, float] = {"RMSE": 38.5391, "MSE": 1485.2655, "MAE": 7.6973}

#: Table 6: means over the NSynth test split, re-synthesis and 440 Hz sine
#: baseline (FFT, STFT and log-mel distances as in :mod:`fmlib.audio.metrics`), and the
#: improvement in percent.
PAPER_TABLE6: dict[str, list] = {
    "metric": ["FFT", "STFT", "Log Mel (raw)", "Log Mel (normalized)"],
    "paper_resynthesis": [15640.799, 2772.460, 144.194, 0.00894],
    "paper_baseline": [33508.780, 7290.362, 184.872, 0.01146],
    "paper_improvement_pct": [53.34, 61.95, 22.00, 21.99],
}
