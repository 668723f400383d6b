"""Embedding conditioning on a learned identity space ([1] Section 3.2: new portraits of an unseen person).

The paper conditions a PixelCNN on the embedding of a portrait by a face
network trained with a triplet loss on many identities, and then draws new
portraits of a person that no network saw in training (its Figure 4), and
decodes points on the line between two embeddings (its Figure 5). Here the
identities are fonts (``pixelcnn.data`` ``glyphs``: each font file an
identity, its 62 glyphs the views, whole font families held out), or the
classes of any labelled data set, e.g. a ``folder:PATH`` of faces with one
sub-folder per person:

1. an embedding network is trained with a triplet loss on the training
   identities only (``train_classes``; default: the identities of the train
   split, which for ``glyphs`` excludes the held-out fonts);
2. a conditional Gated PixelCNN is trained on (image, code) pairs of those
   identities, its code the embedding of the image's identity: the mean of
   the embeddings of ``identity_images`` *other* images of the same identity,
   back on the unit sphere (so the code says which font, not which
   character); ``identity_images=0`` conditions on the image's own
   embedding instead, an auto-encoder;
3. for each unseen identity, the code from a few of its images, then new
   images drawn from it (``identity_code``, ``draw_identities``);
4. a judge, an identity classifier trained on real images of *every*
   identity (held-out ones included; its own split of their images) that
   never sees a generated image, says how many of the new images belong to
   the unseen identity whose code drew them, against chance (1 / the number
   of unseen identities); a control draws from a *wrong* identity's code.

A PixelCNN conditioned on a frozen embedding is a PixelCNN auto-encoder
(``pixelcnn_ae``) whose encoder is the embedding network, frozen, with codes
on the unit sphere (``freeze_encoder=True``, ``normalize_code=True``). So the
pipeline builds that model, trains its encoder with the triplet loss, freezes
it, and trains the decoder on the exact NLL given the codes. The result is an
ordinary saved model: ``model.encode(x)`` is the embedding, and
``model.sample(n, cond=code)`` draws from a code.

    from pixelcnn.identity import IdentityConfig, identity_code, train_identity
    result = train_identity(IdentityConfig(data="glyphs", decoder_minutes=10), "runs/glyphs")
    model = pixelcnn.load("runs/glyphs/model")
    code = identity_code(model, four_glyphs_of_a_font)        # [D]
    new = model.sample(8, cond=code)                          # 8 new glyphs of that font

Triplet loss, "batch all" (Hermans et al. 2017 [2]): a batch holds K images
of each of P identities; every (anchor, positive, negative) in it with
positive of the anchor's identity and negative of another contributes
max(0, |a - p|^2 - |a - n|^2 + margin), averaged over the triplets that are
still active (loss > 0).

NOTE: unlike the paper (faces; a network trained on thousands of identities),
the fonts on one machine are about a hundred identities in thirty families,
28 x 28 and binarized. How much identity survives is measured, not assumed.

Each stage trains one network (the encoder, the decoder, the judge) for a
budget of steps and / or minutes, through the library's one optimizer step
(``pixelcnn.train.steps``: the schedule, precision, NaN rule and gradient
clipping of ``pixelcnn train``), with the settings of ``stage_config``:
Adam, cosine decay to 0 over the budget, gradient norm clipped to 1. Not a
``pixelcnn train`` run (no checkpoints, no resume): the identity data is a
subset of classes and the decoder starts from a trained, frozen encoder.

The modules: ``config`` (IdentityConfig), ``embedding`` (the triplet loss,
codes and the encoder and decoder stages), ``judge`` (the identity
classifier and its measures), ``pipeline`` (train_identity and the run
folder: RUN/model, RUN/identity.json).

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
[2] A. Hermans, L. Beyer, B. Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. arXiv:1703.07737.
"""

from .config import IDENTITY_FILE, MODEL_DIR, IdentityConfig, parse_classes, stage_config
from .embedding import (
    class_centroids,
    draw_identities,
    embed,
    identity_agreement,
    identity_code,
    identity_codes,
    interpolate_identities,
    nearest_neighbour_accuracy,
    source_images,
    train_decoder,
    train_triplet_encoder,
    triplet_loss,
)
from .judge import JUDGE_TEST_ONE_IN, IdentityJudge, judge_identities, judged_fraction, train_judge
from .pipeline import (
    IdentityResult,
    build_identity_model,
    class_subset,
    finished_identity,
    identity_split,
    load_identity_data,
    read_identity,
    train_identity,
)

__all__ = [
    "IDENTITY_FILE",
    "JUDGE_TEST_ONE_IN",
    "MODEL_DIR",
    "IdentityConfig",
    "IdentityJudge",
    "IdentityResult",
    "build_identity_model",
    "class_centroids",
    "class_subset",
    "draw_identities",
    "embed",
    "finished_identity",
    "identity_agreement",
    "identity_code",
    "identity_codes",
    "identity_split",
    "interpolate_identities",
    "judge_identities",
    "judged_fraction",
    "load_identity_data",
    "nearest_neighbour_accuracy",
    "parse_classes",
    "read_identity",
    "source_images",
    "stage_config",
    "train_decoder",
    "train_identity",
    "train_judge",
    "train_triplet_encoder",
    "triplet_loss",
]
