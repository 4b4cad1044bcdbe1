"""Text side of the conditional GAN: item attributes, captions and the BERT sentence encoder.

``attributes`` measures tone, fit and pattern of (real or generated) images, ``captions`` turns
them into shopper phrases, ``encoder`` embeds phrases with a local BERT model (its weights found
and checked by ``loading``, its trainable parts in ``tuning`` and ``head``) and ``features``
holds the Kedro-node functions. The encoder module imports ``transformers``; import it directly.
"""
