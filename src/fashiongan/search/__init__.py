"""Multimodal search: text and/or a picture → generated image → nearest catalog items.

``index`` (faiss), ``intent`` (semantic keywords), ``service`` (the query service), ``cli``
(``fashiongan search``) and ``app`` (the Gradio web app).
"""
