"""Evaluation as a library (no Kedro, no MLflow): metrics, sampling, scoring and protocols.

- ``metrics``: FID, KID, precision/recall/density/coverage, classification and ranking metrics,
  the Inception-v3 feature network.
- ``sampling``: each model's evaluation samples from the test captions (``sample_models``),
  caption lookups (``catalog_captions``, ``caption_texts``), ``encode_texts``.
- ``scoring``: the evaluator's and discriminators' verdicts per model beside the floor and noise
  rows (``score_models``), ``attribute_accuracy``, ``json_safe``.
- ``discriminator``: a discriminator as a held-out judge (``discriminator_metrics``).
- ``inception``: the literature-comparable FID (``load_inception``, ``inception_fids``).
- ``retrieval``: the Fashion-MNIST retrieval protocol and its building blocks (``draw_queries``,
  ``relevant_sets``, ``rank``, ``retrieval_scores``, ``synthetic_queries``, ``verdict`` …).
- ``fashioniq``: the FashionIQ retrieval protocol (``rank_gallery``, ``fashioniq_recall``).

The evaluation and FashionIQ pipelines call these; benchmarks and notebooks can too.
"""
