"""FashionGAN: multimodal fashion search with a conditional GAN."""

__version__ = "0.1.0"
