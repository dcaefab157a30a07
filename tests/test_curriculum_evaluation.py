"""``evaluate``'s end-of-episode hook sees each episode's final film, the one its figures describe."""

import numpy as np
from test_curriculum_cli import CONFIGS

from sb3_ext.curriculum.config import load_stage_configs
from sb3_ext.curriculum.evaluation import evaluate
from sb3_ext.envs.lattice.heuristics import NeutralPolicy


def test_on_episode_end_sees_every_final_film():
    config = load_stage_configs(CONFIGS)[1]
    films: list[np.ndarray] = []
    result = evaluate(NeutralPolicy(config.environment.patch_radius), config, 3, seed=4,
                      on_episode_end=lambda env: films.append(env.unwrapped.engine.heights))  # fmt: skip
    assert len(films) == 3
    assert len({film.tobytes() for film in films}) == 3  # three different episodes, not one film thrice
    assert np.isclose(result.final_roughness, np.mean([film.std() for film in films]))
    assert np.isclose(result.mean_height, np.mean([film.mean() for film in films]))
