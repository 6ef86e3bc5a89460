"""The loss terms a training step computes and logs, by the names ``log.jsonl``, the fine-tune worker and the
fine-tune chart use (no torch here: the service and the job worker's parent read it)."""

TERMS = ("ar", "sc", "tc", "stc", "exp", "col", "tva", "dark", "total", "loss")  # "loss": what is optimised
