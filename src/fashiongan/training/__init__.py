"""Training loops, checkpoints and MLflow logging shared by the GAN families."""
