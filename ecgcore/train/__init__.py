"""Training: :class:`~ecgcore.train.config.TrainConfig` and the trainer in parts.

``trainer.train`` (the entry) -> ``loop.fit`` (setup, epochs, end of epoch, summary), over
``batches`` (rows, labels, :class:`~ecgcore.train.batches.BatchSource`), ``optim`` (loss, optimiser,
schedule, one step), ``evaluate`` (metrics of a split), ``device`` (device and precision) and ``resume``
(what an epoch leaves on disk); it reports through ``recorder.Recorder`` and knows no run store
(``ecgcore.runs.run_training`` trains a run of the store). ``transfer`` builds pre-trained models,
``checkpoint`` reads and writes safe checkpoints, ``distributed`` holds the DDP helpers.

Modules are imported where used (``from ecgcore.train.trainer import train``), so importing the
configuration does not import torch.
"""
