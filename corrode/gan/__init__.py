"""GAN-only parts: losses, DiffAugment, the image pool, ONNX export."""
