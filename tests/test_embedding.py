"""The identity pipeline: triplet loss, triplet training, class subsets, and the two-stage run end to end."""

import itertools
import json

import pytest
import torch

import pixelcnn
from pixelcnn.data import ImageDataset
from pixelcnn.identity import (
    IdentityConfig,
    class_centroids,
    class_subset,
    identity_agreement,
    identity_codes,
    judged_fraction,
    nearest_neighbour_accuracy,
    parse_classes,
    train_identity,
    train_judge,
    train_triplet_encoder,
    triplet_loss,
)


def test_parse_classes():
    assert parse_classes("0-6") == (0, 1, 2, 3, 4, 5, 6)
    assert parse_classes("9,7,8") == (7, 8, 9)
    assert parse_classes("0-2,5") == (0, 1, 2, 5)
    for bad in ("", "a-b", "3-", "-1", "5-3"):
        with pytest.raises(ValueError, match="classes are written like"):
            parse_classes(bad)


def test_triplet_loss_equals_the_sum_over_every_valid_triplet():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(7, 3, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    margin = 0.5
    hinges = []
    for a, p, n in itertools.product(range(7), repeat=3):
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]:
            hinges.append(
                max(
                    0.0,
                    float((embeddings[a] - embeddings[p]).pow(2).sum() - (embeddings[a] - embeddings[n]).pow(2).sum())
                    + margin,
                )
            )
    active = [h for h in hinges if h > 0]
    loss, fraction = triplet_loss(embeddings, labels, margin)
    assert float(loss) == pytest.approx(sum(active) / len(active), rel=1e-5)
    assert fraction == pytest.approx(len(active) / len(hinges))


def test_triplet_loss_is_zero_for_separated_classes():
    embeddings = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]], requires_grad=True)
    loss, fraction = triplet_loss(embeddings, torch.tensor([0, 0, 1, 1]), margin=1.0)
    assert float(loss.detach()) == 0 and fraction == 0
    loss.backward()  # still part of the graph


def _striped_digits(per_class: int = 12) -> ImageDataset:
    """Three "classes" of 8x8 binary images: a horizontal, a vertical and a diagonal bar, with pixel noise."""
    generator = torch.Generator().manual_seed(0)
    bars = torch.zeros(3, 8, 8)
    bars[0, 3:5], bars[1, :, 3:5] = 1, 1
    bars[2] = torch.eye(8) + torch.eye(8).roll(1, 1)
    images = bars.repeat_interleave(per_class, 0)
    flips = torch.rand(images.shape, generator=generator) < 0.1
    images = (images.bool() ^ flips).to(torch.uint8)[:, None]  # [3*per_class, 1, 8, 8]
    labels = torch.arange(3).repeat_interleave(per_class)
    return ImageDataset(images, labels, name="bars", split="train", levels=2, num_classes=4)


def test_class_subset_keeps_only_those_classes():
    bars = _striped_digits()
    subset = class_subset(bars, (0, 2))
    assert set(subset.labels.tolist()) == {0, 2} and len(subset) == 24
    assert torch.equal(subset.images, bars.images[bars.labels != 1])
    with pytest.raises(ValueError, match=r"classes 0..3; got \[7\]"):
        class_subset(bars, (0, 7))


def test_triplet_training_separates_the_classes_and_freezes_the_encoder():
    bars = _striped_digits()
    config = IdentityConfig(
        train_classes=(0, 1, 2),
        embedding_dim=4,
        encoder_channels=8,
        triplet_steps=20,
        per_class=4,
        triplet_lr=3e-3,
        n_layers=1,
        hidden=4,
    )
    model = pixelcnn.build(
        "pixelcnn_ae",
        image_shape=(1, 8, 8),
        levels=2,
        bottleneck=4,
        encoder_channels=8,
        n_layers=1,
        hidden=4,
        normalize_code=True,
        freeze_encoder=True,
    )
    with torch.no_grad():
        random_codes = model.encode(bars.images)
    stats = train_triplet_encoder(model, bars, config)
    with torch.no_grad():
        codes = model.encode(bars.images)
    # A random encoder: every triplet violates the margin, 1-NN about chance; trained: (almost) none does.
    assert triplet_loss(random_codes, bars.labels, config.margin)[1] > 0.9
    assert nearest_neighbour_accuracy(random_codes, bars.labels) < 0.8
    assert stats["steps"] == 20 and triplet_loss(codes, bars.labels, config.margin)[1] < 0.05
    assert nearest_neighbour_accuracy(codes, bars.labels) > 0.9
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_nearest_neighbour_accuracy_and_centroid_agreement():
    embeddings = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    assert nearest_neighbour_accuracy(embeddings, labels) == 1.0
    assert nearest_neighbour_accuracy(embeddings, torch.tensor([0, 1, 0, 1])) == 0.0
    centroids = class_centroids(embeddings, labels, [0, 1])
    assert torch.allclose(centroids.norm(dim=1), torch.ones(2))

    class Identity:  # a stand-in whose "encoder" reads the first two pixels
        def encode(self, x):
            return x.flatten(1)[:, :2].float()

    samples = torch.tensor([[1, 0], [0, 1], [1, 0]]).view(1, 3, 1, 1, 2)  # one source image, 3 draws
    result = identity_agreement(Identity(), samples, torch.tensor([0]), centroids, [0, 1])
    assert result["agreement"] == pytest.approx(2 / 3) and result["assigned"] == {0: 2, 1: 1}


def test_identity_config_errors():
    with pytest.raises(ValueError, match="at least 2 distinct classes"):
        IdentityConfig(train_classes=(3,))
    with pytest.raises(ValueError, match="per_class must be >= 2"):
        IdentityConfig(per_class=1)
    with pytest.raises(ValueError, match="say when the decoder stage stops"):
        IdentityConfig(decoder_steps=None, decoder_minutes=None)
    with pytest.raises(ValueError, match="identity_images must be an integer >= 0"):
        IdentityConfig(identity_images=-1)
    with pytest.raises(ValueError, match="classes_per_batch must be >= 2"):
        IdentityConfig(classes_per_batch=1)
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16, got 'half'"):
        IdentityConfig(precision="half")
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        IdentityConfig(kernel_size=0)


def test_identity_codes_average_other_images_of_the_same_identity():
    embeddings = torch.eye(6)  # image i's embedding: the unit vector e_i
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    codes = identity_codes(embeddings, labels, torch.arange(6), k=50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(codes.norm(dim=1), torch.ones(6))
    for i in range(6):
        others = [j for j in range(6) if labels[j] == labels[i] and j != i] or [i]
        assert codes[i, i] == 0 or others == [i]  # never its own embedding (unless it is alone)
        assert set(torch.nonzero(codes[i]).flatten().tolist()) == set(others)


def test_the_judge_figures_count_per_identity_with_a_standard_error():
    assigned = torch.tensor([[0, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])  # 3 identities, 4 images each
    figure = judged_fraction(assigned, torch.tensor([0, 1, 2]))
    per_identity = torch.tensor([0.75, 1.0, 0.0], dtype=torch.float64)
    assert figure["fraction"] == pytest.approx(float(per_identity.mean()))
    assert figure["standard_error"] == pytest.approx(float(per_identity.std() / 3**0.5))
    assert figure["identities"] == 3 and figure["images"] == 12


def test_the_judge_learns_real_identities_and_never_sees_generated_images():
    bars = _striped_digits(per_class=16)
    test = ImageDataset(bars.images[:0], bars.labels[:0], name="bars", split="test", levels=2, num_classes=4)
    config = IdentityConfig(judge_steps=60, seed=0)
    judge, images, labels, stats = train_judge([bars, test], config)
    assert stats["steps"] == 60 and len(labels) == 3 * 4  # one in 4 of each identity
    assert (judge.assign(images, [0, 1, 2]) == labels).float().mean() == 1.0
    assert set(judge.assign(images, [1, 2]).tolist()) <= {1, 2}  # deciding among some only


def test_the_pipeline_end_to_end_on_mnist5k(tmp_path):
    config = IdentityConfig(
        data="mnist5k",
        binarize="dynamic",
        train_classes=(0, 1, 2, 3, 4, 5, 6),
        embedding_dim=3,
        encoder_channels=4,
        triplet_steps=3,
        per_class=2,
        n_layers=1,
        hidden=4,
        decoder_steps=3,
        decoder_minutes=None,
        batch_size=4,
        judge_steps=2,
        judge_samples=2,
    )
    result = train_identity(config, tmp_path / "identity", log=None)
    model = pixelcnn.load(result.model_path)
    saved = json.loads((tmp_path / "identity" / "identity.json").read_text())
    assert saved["config"]["train_classes"] == [0, 1, 2, 3, 4, 5, 6]
    measured = saved["measurements"]
    assert measured["unseen_classes"] == [7, 8, 9] and measured["training_classes"] == list(range(7))
    assert measured["unseen"]["images"] == 300 and measured["seen"]["split"] == "test"
    assert measured["decoder"]["steps"] == 3
    judge = measured["judge"]
    assert judge["chance"] == pytest.approx(1 / 3) and judge["generated"]["images"] == 3 * 2
    assert 0 <= judge["real_held_out_accuracy"] <= 1 and judge["real_held_out_images"] == 375  # 1 in 4 of both splits
    assert model.config.freeze_encoder and model.config.normalize_code and model.config.bottleneck == 3
    x = torch.randint(0, 2, (2, 1, 28, 28))
    assert torch.allclose(model.encode(x).norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="already holds an identity run"):
        train_identity(config, tmp_path / "identity", log=None)


def test_the_decoder_stage_leaves_the_embedding_untouched(tmp_path, monkeypatch):
    import pixelcnn.identity.pipeline as pipeline

    trained = {}
    original = pipeline.train_triplet_encoder

    def remember(model, train_set, config, **kwargs):
        stats = original(model, train_set, config, **kwargs)
        trained.update({k: v.clone() for k, v in model.encoder.state_dict().items()})
        return stats

    monkeypatch.setattr(pipeline, "train_triplet_encoder", remember)
    config = IdentityConfig(
        data="mnist5k",
        train_classes=(0, 1),
        embedding_dim=3,
        encoder_channels=4,
        triplet_steps=2,
        per_class=2,
        n_layers=1,
        hidden=4,
        decoder_steps=3,
        decoder_minutes=None,
        batch_size=4,
        judge_steps=0,
    )
    result = train_identity(config, tmp_path / "identity", log=None)
    saved = pixelcnn.load(result.model_path).encoder.state_dict()
    assert trained and all(torch.equal(saved[k], trained[k]) for k in trained)


def test_the_decoder_trains_under_the_asked_precision_with_the_asked_kernel(tmp_path, monkeypatch):
    """precision="bf16": the PixelCNN stage's network runs under bfloat16 autocast (weights stay float32)
    and its loss still falls; kernel_size reaches the decoder."""
    seen = []
    network = pixelcnn.models.autoencoder.PixelCNNAutoEncoder.network

    def spy(self, x, h):
        out = network(self, x, h)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(pixelcnn.models.autoencoder.PixelCNNAutoEncoder, "network", spy)
    config = IdentityConfig(
        data="mnist5k",
        train_classes=(0, 1),
        embedding_dim=3,
        encoder_channels=4,
        triplet_steps=2,
        per_class=2,
        n_layers=2,
        hidden=8,
        kernel_size=5,
        decoder_steps=100,
        decoder_minutes=None,
        batch_size=8,
        lr=5e-3,
        judge_steps=0,
        precision="bf16",
    )
    messages = []
    result = train_identity(config, tmp_path / "identity", log=messages.append)
    assert torch.bfloat16 in seen
    assert any(m.strip().startswith("precision bf16: asked for") for m in messages)
    model = pixelcnn.load(result.model_path)
    assert model.config.kernel_size == 5 and all(p.dtype == torch.float32 for p in model.parameters())
    curve = [float(m.split("NLL (nats) ")[1].split()[0]) for m in messages if "NLL (nats) " in m]
    assert len(curve) == 2 and curve[1] < curve[0] - 20  # mean NLL of steps 1-50, then of 51-100


def test_the_identity_experiment_trains_through_the_one_optimizer_step_and_keeps_its_old_import_path(monkeypatch):
    import pixelcnn.embedding as old
    import pixelcnn.identity as identity
    import pixelcnn.identity.judge as judge_module
    from pixelcnn.train import steps

    assert old.train_identity is identity.train_identity and old.IdentityConfig is identity.IdentityConfig
    assert not hasattr(old, "fit") and not hasattr(identity, "fit")
    calls = []
    original = steps.OptimizerStep.take

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(steps.OptimizerStep, "take", counted)
    bars = _striped_digits(per_class=8)
    test = ImageDataset(bars.images[:0], bars.labels[:0], name="bars", split="test", levels=2, num_classes=4)
    judge_module.train_judge([bars, test], IdentityConfig(judge_steps=3))
    assert len(calls) == 3
