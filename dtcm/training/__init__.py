"""Joint training of DTCM on Hugging Face Accelerate, one concept per module.

``args`` (defaults, bounds, recipes, flags), ``build`` (data, model, schedule), ``sampler`` (the epoch order),
``step`` (what is trained and its losses), ``checkpoint`` (atomic, resumable folders), ``distributed``
(the few collectives), ``log`` (``log.jsonl``) and ``loop`` (``main(args)``). Nothing is imported here, so
``dtcm.training.args`` stays free of torch for the service's fine-tune form.
"""
