"""Evaluation as a library (no Kedro): metrics, sampling, discriminator scoring and protocols.

The evaluation and FashionIQ pipelines call these; benchmarks and notebooks can too.
"""
