"""Training-time augmentation: affine and elastic, each image its own."""

import torch

from container.training.optimization import augment


def digit_batch(n):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a stroke, as a "1"
    return x


def test_no_range_and_no_elastic_leaves_images_as_they_are():
    x = digit_batch(4)
    same = augment(x, max_degrees=0.0, max_shift=0.0, max_scale=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


def test_elastic_bends_each_image_its_own_way_and_keeps_the_stroke():
    x = digit_batch(2)
    torch.manual_seed(0)
    bent = augment(x, max_degrees=0.0, max_shift=0.0, max_scale=0.0, elastic=2.0)
    assert not torch.allclose(bent[0], bent[1])  # a field for each image
    moved = (bent - x).abs().amax(dim=(1, 2, 3))
    assert (moved > 0.3).all()  # pixels moved
    ink = bent.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert ((ink > 0.7) & (ink < 1.3)).all(), ink  # a displacement of pixels, not a new image
    torch.manual_seed(0)
    assert torch.equal(augment(x, 0.0, 0.0, 0.0, elastic=2.0), bent)  # seeded: resumes repeat
