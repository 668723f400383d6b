"""The identity experiment's former home: it is ``pixelcnn.identity`` now (see its docstring).

This module re-exports its names so that ``from pixelcnn.embedding import ...``
keeps working; new code imports ``pixelcnn.identity``.
"""

# (every public name of pixelcnn.identity, for the imports of older code)
from .identity import (
    IDENTITY_FILE,
    JUDGE_TEST_ONE_IN,
    MODEL_DIR,
    IdentityConfig,
    IdentityJudge,
    IdentityResult,
    build_identity_model,
    class_centroids,
    class_subset,
    draw_identities,
    embed,
    finished_identity,
    identity_agreement,
    identity_code,
    identity_codes,
    identity_split,
    interpolate_identities,
    judge_identities,
    judged_fraction,
    load_identity_data,
    nearest_neighbour_accuracy,
    parse_classes,
    read_identity,
    source_images,
    stage_config,
    train_decoder,
    train_identity,
    train_judge,
    train_triplet_encoder,
    triplet_loss,
)
