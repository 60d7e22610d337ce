"""The Siamese change-detection U-Net: the shared model suite plus weight sharing."""

import torch

from crackal.models import create_model
from tests.models.test_models import ModelSuite


class TestSiameseUNet(ModelSuite):
    arch, channels = "siamese_unet", 6

    def test_both_dates_go_through_one_set_of_encoder_weights(self):
        trunk = self.build().trunk
        encoder_ids = {id(p) for p in trunk.encoder.parameters()}
        # one encoder: its parameters are counted once, and no other module holds a copy
        assert len(encoder_ids) == len(list(trunk.encoder.parameters()))
        first = trunk.encoder[0][0].weight
        assert first.shape[1] == 3  # it sees one date (3 channels), not the stacked pair
        assert sum(1 for p in trunk.parameters() if p.shape == first.shape and p is not first) == 0

    def test_encoder_features_are_the_same_whichever_branch_a_date_enters(self):
        trunk = self.build().trunk.eval()
        a, b = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            alone = trunk.encode(a)
            paired = trunk.encode(torch.cat([b, a], 0))  # a in the second branch
        for x, y in zip(alone, paired):
            torch.testing.assert_close(x, y[2:], atol=1e-5, rtol=1e-5)

    def test_swapping_dates_changes_the_output_only_through_the_decoder(self):
        model = self.build().eval()
        a, b = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
        ab, ba = torch.cat([a, b], 1), torch.cat([b, a], 1)
        with torch.no_grad():
            assert not torch.allclose(model(ab), model(ba))  # the decoder tells the dates apart
            # make every decoder layer that reads cat(A, B) give both dates the same weights
            trunk = model.trunk
            for conv in [trunk.bottleneck[0]] + [fuse[0] for fuse in trunk.fuse]:
                w = conv.weight
                half = w.shape[1] // 3 if conv is not trunk.bottleneck[0] else w.shape[1] // 2
                w[:, half : 2 * half] = w[:, :half]
            # ... and the output no longer depends on the order: nothing else saw it
            torch.testing.assert_close(model(ab), model(ba), atol=1e-5, rtol=1e-5)

    def test_identical_dates_give_one_change_map_per_image(self):
        model = create_model("siamese_unet", 2, base_channels=8, depth=2).eval()
        x = torch.randn(3, 3, 20, 28)
        with torch.no_grad():
            assert model(torch.cat([x, x], 1)).shape == (3, 1, 20, 28)
