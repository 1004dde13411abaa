"""Training: continuous DSM trainer, EMA, checkpoints, typed configs, patch sampling, DDP."""
from scoremed.training.trainer import StepBatchSampler, Trainer, TrainingDiverged, shard_noise

__all__ = ["Trainer", "TrainingDiverged", "StepBatchSampler", "shard_noise"]
