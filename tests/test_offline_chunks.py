"""Offline chunks: write/read round trip, streaming into SB3 buffers, refusals, builder, OfflineSeed."""

import hashlib
import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize

from sb3_ext.callbacks import ChunkRecorder, OfflineSeed
from sb3_ext.data import ChunkWriter, SyntheticDatasetBuilder, iter_chunks, load_chunks, read_manifest
from sb3_ext.data import reader
from sb3_ext.data.format import FORMAT_VERSION
from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN

# Tiny networks on a shared 2-core machine: extra intra-op threads only spin against each other.
th.set_num_threads(1)

OBS_SPACE = spaces.Box(low=np.array([-1, -1, -8], dtype=np.float32), high=np.array([1, 1, 8], dtype=np.float32))
ACTION_SPACE = spaces.Box(low=-2.0, high=2.0, shape=(1,), dtype=np.float32)


def random_transitions(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observations": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        "next_observations": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        "actions": rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "dones": rng.random(n) < 0.1,
        "timeouts": rng.random(n) < 0.05,
    }


def write_dataset(directory, data: dict, chunk_size: int = 40, batch: int = 7, **kwargs) -> dict:
    """Feed ``data`` to a ChunkWriter in uneven batches, so that batches straddle chunk borders."""
    with ChunkWriter(directory, OBS_SPACE, ACTION_SPACE, chunk_size=chunk_size, env_id="Pendulum-v1", **kwargs) as writer:
        for start in range(0, len(data["rewards"]), batch):
            writer.add(**{field: values[start : start + batch] for field, values in data.items()})
    return writer.manifest


def reference_buffer(data: dict, buffer_size: int, n_envs: int = 1, **kwargs) -> ReplayBuffer:
    """The same transitions put in with SB3's own ``buffer.add``, Box actions scaled by hand (a / 2)."""
    buffer = ReplayBuffer(buffer_size, OBS_SPACE, ACTION_SPACE, n_envs=n_envs, **kwargs)
    for row in range(len(data["rewards"]) // n_envs):
        rows = slice(row * n_envs, (row + 1) * n_envs)
        infos = [{"TimeLimit.truncated": bool(t)} for t in data["timeouts"][rows]]
        buffer.add(data["observations"][rows], data["next_observations"][rows], data["actions"][rows] / 2.0,
                   data["rewards"][rows], data["dones"][rows], infos)
    return buffer


def assert_same_buffer(ours: ReplayBuffer, reference: ReplayBuffer) -> None:
    assert (ours.pos, ours.full) == (reference.pos, reference.full)
    for field in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        if hasattr(reference, field):
            np.testing.assert_allclose(getattr(ours, field), getattr(reference, field), atol=1e-6, err_msg=field)


def test_written_dataset_reads_back_equal(tmp_path):
    data = random_transitions(100)
    manifest = write_dataset(tmp_path / "v1", data)
    assert [chunk["n_transitions"] for chunk in manifest["chunks"]] == [40, 40, 20]
    assert (tmp_path / "v1" / "chunks" / "chunk_00002.npz").is_file()
    chunks = list(iter_chunks(tmp_path / "v1"))
    for field, values in data.items():
        read_back = np.concatenate([chunk[field] for chunk in chunks])
        assert read_back.dtype == values.dtype
        np.testing.assert_array_equal(read_back, values, err_msg=field)
    on_disk = read_manifest(tmp_path / "v1" / "manifest.json")
    assert on_disk["observation_space"] == OBS_SPACE and on_disk["action_space"] == ACTION_SPACE
    assert on_disk["n_transitions"] == 100 and on_disk["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize(
    ("buffer_size", "n_envs", "kwargs"),
    [
        (300, 1, {}),  # fits
        (64, 1, {}),  # wraps around the ring
        (70, 2, {}),  # two envs per row, wraps
        (64, 1, {"optimize_memory_usage": True, "handle_timeout_termination": False}),
    ],
)
def test_streaming_matches_sb3_add(tmp_path, buffer_size, n_envs, kwargs):
    data = random_transitions(100)
    write_dataset(tmp_path / "v1", data, n_envs=n_envs)
    buffer = ReplayBuffer(buffer_size, OBS_SPACE, ACTION_SPACE, n_envs=n_envs, **kwargs)
    assert load_chunks(buffer, tmp_path / "v1") == 100
    assert_same_buffer(buffer, reference_buffer(data, buffer_size, n_envs, **kwargs))


def test_streaming_into_a_buffer_with_more_envs_than_recorded(tmp_path):
    """A one-env dataset fills 3-env rows in order; the 1 transition that cannot fill a row is dropped."""
    data = random_transitions(100)
    write_dataset(tmp_path / "v1", data)
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE, n_envs=3)
    with pytest.warns(UserWarning, match="1 transitions do not fill a row of 3"):
        assert load_chunks(buffer, tmp_path / "v1") == 99
    assert_same_buffer(buffer, reference_buffer({k: v[:99] for k, v in data.items()}, 300, n_envs=3))


def test_nstep_buffer_needs_the_recorded_env_count(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(20))
    buffer = NStepReplayBuffer(60, OBS_SPACE, ACTION_SPACE, n_envs=2, n_steps=3, gamma=0.9)
    with pytest.raises(ValueError, match=r"recorded with n_envs=1.*n_envs=2"):
        load_chunks(buffer, tmp_path / "v1")
    assert buffer.pos == 0


def test_one_env_nstep_buffer_takes_each_recorded_env_in_turn(tmp_path):
    """A 2-env recording in a one-env n-step buffer: per chunk, env 0's steps then env 1's, each
    stretch's last step cut (a time limit unless it ended its episode), as buffer.add would store
    one env's steps at a time; the n-step returns then never run from one env into the other."""
    data = random_transitions(80)
    data["timeouts"] &= data["dones"]  # SB3's meaning: a time limit is an episode end
    write_dataset(tmp_path / "v1", data, chunk_size=40, batch=2, n_envs=2)
    ours = NStepReplayBuffer(200, OBS_SPACE, ACTION_SPACE, n_steps=3, gamma=0.9)
    assert load_chunks(ours, tmp_path / "v1") == 80

    reference = NStepReplayBuffer(200, OBS_SPACE, ACTION_SPACE, n_steps=3, gamma=0.9)
    for chunk in (range(0, 40), range(40, 80)):
        for env in (0, 1):
            stretch = [row for row in chunk if row % 2 == env]
            for row in stretch:
                cut = row == stretch[-1] and not data["dones"][row]
                reference.add(data["observations"][row], data["next_observations"][row], data["actions"][row] / 2.0,
                              data["rewards"][row], data["dones"][row],
                              [{"TimeLimit.truncated": bool(data["timeouts"][row] or cut)}])
    assert_same_buffer(ours, reference)
    assert ours.timeouts[[19, 39, 59, 79], 0].sum() >= 3  # the cuts (or real episode ends)
    samples = ours._get_samples(np.arange(80))
    expected = reference._get_samples(np.arange(80))
    np.testing.assert_allclose(samples.rewards.numpy(), expected.rewards.numpy(), atol=1e-6)
    np.testing.assert_allclose(samples.next_observations.numpy(), expected.next_observations.numpy(), atol=1e-6)


def test_corrupted_chunk_is_refused_and_nothing_is_loaded(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(100))
    chunk = tmp_path / "v1" / "chunks" / "chunk_00001.npz"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE)
    with pytest.raises(ValueError, match=r"chunk_00001\.npz: sha256 .* does not match"):
        load_chunks(buffer, tmp_path / "v1")
    assert buffer.pos == 0 and not buffer.full and not buffer.observations.any()


def test_unreadable_chunk_without_verify_is_refused_before_loading(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(100))
    (tmp_path / "v1" / "chunks" / "chunk_00002.npz").write_bytes(b"not a zip file")
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE)
    with pytest.raises(ValueError, match=r"chunk_00002\.npz: not a readable chunk"):
        load_chunks(buffer, tmp_path / "v1", verify=False)
    assert buffer.pos == 0 and not buffer.full and not buffer.observations.any()


def test_failure_while_loading_rolls_the_buffer_back(tmp_path, monkeypatch):
    """A chunk whose data fails to read after the up-front checks passed (e.g. damaged on disk meanwhile)."""
    write_dataset(tmp_path / "v1", random_transitions(100))
    real_read_chunk = reader.read_chunk

    def failing_on_the_third(path):
        if path.name == "chunk_00002.npz":
            raise ValueError(f"{path}: not a readable chunk (simulated)")
        return real_read_chunk(path)

    monkeypatch.setattr(reader, "read_chunk", failing_on_the_third)
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE)
    with pytest.raises(ValueError, match="simulated"):
        load_chunks(buffer, tmp_path / "v1")
    assert buffer.observations[:80].any()  # two chunks had been written ...
    assert buffer.pos == 0 and not buffer.full  # ... but are not sampleable


def test_chunk_that_disagrees_with_its_manifest_is_refused_before_loading(tmp_path):
    """A well-formed last chunk (its hash updated too) whose arrays do not match the manifest's spaces."""
    write_dataset(tmp_path / "v1", random_transitions(100))
    chunk = tmp_path / "v1" / "chunks" / "chunk_00002.npz"
    arrays = dict(np.load(chunk))
    arrays["rewards"] = arrays["rewards"].astype(np.float64)
    np.savez(chunk, **arrays)
    manifest_file = tmp_path / "v1" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["chunks"][2]["sha256"] = hashlib.sha256(chunk.read_bytes()).hexdigest()
    manifest_file.write_text(json.dumps(manifest))
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE)
    with pytest.raises(ValueError, match=r"chunk_00002\.npz: rewards is float64\[20\], the manifest implies float32"):
        load_chunks(buffer, tmp_path / "v1")
    assert buffer.pos == 0 and not buffer.observations.any()  # chunks 0 and 1 were not written either


def test_missing_chunk_is_refused(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(100))
    (tmp_path / "v1" / "chunks" / "chunk_00002.npz").unlink()
    buffer = ReplayBuffer(300, OBS_SPACE, ACTION_SPACE)
    with pytest.raises(ValueError, match=r"chunk_00002\.npz: chunk listed in .*manifest\.json is missing"):
        load_chunks(buffer, tmp_path / "v1", verify=False)
    assert buffer.pos == 0 and not buffer.observations.any()


def test_spaces_that_do_not_match_are_refused(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(10))
    other = ReplayBuffer(50, OBS_SPACE, spaces.Box(-1.0, 1.0, (1,), np.float32))
    with pytest.raises(ValueError, match=r"manifest\.json: action space .* does not match the replay buffer"):
        load_chunks(other, tmp_path / "v1")


def test_newer_format_version_is_refused(tmp_path):
    write_dataset(tmp_path / "v1", random_transitions(10))
    manifest_file = tmp_path / "v1" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"manifest\.json: format_version {FORMAT_VERSION + 1} is newer"):
        load_chunks(ReplayBuffer(50, OBS_SPACE, ACTION_SPACE), tmp_path / "v1")


def test_unfinished_dataset_is_refused_and_versions_are_not_overwritten(tmp_path):
    writer = ChunkWriter(tmp_path / "v1", OBS_SPACE, ACTION_SPACE, chunk_size=40)
    writer.add(**random_transitions(50))  # one chunk on disk, no manifest yet
    with pytest.raises(ValueError, match="no manifest"):
        load_chunks(ReplayBuffer(50, OBS_SPACE, ACTION_SPACE), tmp_path / "v1")
    writer.close()
    with pytest.raises(ValueError, match="already exists"):
        ChunkWriter(tmp_path / "v1", OBS_SPACE, ACTION_SPACE)
    write_dataset(tmp_path / "v1", random_transitions(30, seed=1), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "v1" / "chunks").iterdir()) == ["chunk_00000.npz"]
    assert read_manifest(tmp_path / "v1")["n_transitions"] == 30


def test_builder_records_transitions_like_sb3(tmp_path):
    """Two envs: next_observations follow observations except at episode ends (the terminal obs)."""
    builder = SyntheticDatasetBuilder("Pendulum-v1", n_transitions=500, version="rand", chunk_size=100,
                                      seed=3, root=tmp_path, n_envs=2)
    directory = builder.build()
    data = {field: np.concatenate([c[field] for c in iter_chunks(directory)]) for field in ("observations",
            "next_observations", "dones", "timeouts", "actions")}
    per_env = {field: values.reshape(250, 2, *values.shape[1:]) for field, values in data.items()}
    assert per_env["dones"][199].all() and per_env["timeouts"][199].all() and per_env["dones"].sum() == 2
    for env in range(2):
        continuing = ~per_env["dones"][:-1, env]
        np.testing.assert_array_equal(per_env["next_observations"][:-1, env][continuing],
                                      per_env["observations"][1:, env][continuing])
    assert np.abs(data["actions"]).max() <= 2.0
    # Deterministic given the seed: a second build has the same chunk hashes.
    again = SyntheticDatasetBuilder("Pendulum-v1", n_transitions=500, version="rand2", chunk_size=100,
                                    seed=3, root=tmp_path, n_envs=2)
    again.build()
    hashes = [chunk["sha256"] for chunk in builder.export_manifest()["chunks"]]
    assert hashes == [chunk["sha256"] for chunk in again.export_manifest(tmp_path / "copy.json")["chunks"]]
    assert json.loads((tmp_path / "copy.json").read_text())["provenance"]["policy"] == "random"


def test_builder_from_a_model_and_a_callable(tmp_path):
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, seed=0)
    directory = SyntheticDatasetBuilder("Pendulum-v1", model, n_transitions=50, version="m", root=tmp_path).build()
    (chunk,) = iter_chunks(directory)
    np.testing.assert_allclose(chunk["actions"], model.predict(chunk["observations"])[0], rtol=1e-5)
    assert read_manifest(directory)["provenance"]["policy"] == "model:TD3"

    def push_right(observations):
        return np.full((len(observations), 1), 5.0)  # out of bounds: clipped to 2

    directory = SyntheticDatasetBuilder("Pendulum-v1", push_right, n_transitions=20, version="c", root=tmp_path).build()
    (chunk,) = iter_chunks(directory)
    assert (chunk["actions"] == 2.0).all()


def test_offline_seed_loads_once_into_dqn_and_td3(tmp_path):
    directory = SyntheticDatasetBuilder("CartPole-v1", n_transitions=300, version="cp", root=tmp_path).build()
    dqn = DQN("MlpPolicy", "CartPole-v1", buffer_size=1000, learning_starts=0, policy_kwargs={"net_arch": [8]})
    seed = OfflineSeed(directory)
    dqn.learn(20, callback=seed)
    dqn.learn(20, callback=seed, reset_num_timesteps=False)
    assert seed.n_loaded == 300 and dqn.replay_buffer.pos == 340
    offline_actions = np.concatenate([c["actions"] for c in iter_chunks(directory)])
    np.testing.assert_array_equal(dqn.replay_buffer.actions[:300, 0, 0], offline_actions)

    pendulum = SyntheticDatasetBuilder("Pendulum-v1", n_transitions=200, version="p", root=tmp_path).build()
    td3 = TD3("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2), buffer_size=1000, learning_starts=10,
              policy_kwargs={"net_arch": [8]}, batch_size=16)
    td3.learn(20, callback=OfflineSeed(pendulum))
    assert td3.replay_buffer.pos == 100 + 10  # 200 transitions in 2-env rows, then 20 online steps
    with pytest.raises(ValueError, match="observation space"):
        DQN("MlpPolicy", gym.make("CartPole-v1")).learn(1, callback=OfflineSeed(pendulum))


@pytest.fixture(scope="module")
def random_datasets(tmp_path_factory):
    """Small random-policy datasets of a discrete-action and a continuous-action env."""
    root = tmp_path_factory.mktemp("datasets")
    return {env_id: SyntheticDatasetBuilder(env_id, n_transitions=96, version=env_id, chunk_size=40, root=root).build()
            for env_id in ("CartPole-v1", "Pendulum-v1")}


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [(DQN, "CartPole-v1"), (TwinDQN, "CartPole-v1"), (QuantileDQN, "CartPole-v1"),
     (DDPG, "Pendulum-v1"), (TD3, "Pendulum-v1"), (SAC, "Pendulum-v1"), (DelayedTD3, "Pendulum-v1")],
)
def test_every_off_policy_buffer_is_seeded_and_trains(random_datasets, algo, env_id):
    """The issue's list of algorithms: the streamed rows are the dataset's, and train() learns from them."""
    model = algo("MlpPolicy", env_id, buffer_size=200, batch_size=16, policy_kwargs={"net_arch": [8]}, seed=0)
    assert load_chunks(model.replay_buffer, random_datasets[env_id]) == 96
    assert model.replay_buffer.pos == 96
    observations = np.concatenate([chunk["observations"] for chunk in iter_chunks(random_datasets[env_id])])
    np.testing.assert_array_equal(model.replay_buffer.observations[:96, 0], observations)
    model.set_logger(Logger(folder=None, output_formats=[]))
    before = [parameter.detach().clone() for parameter in model.policy.parameters()]
    model.train(gradient_steps=2, batch_size=16)  # samples only the 96 offline rows
    assert any(not th.equal(old, new) for old, new in zip(before, model.policy.parameters(), strict=False))


def test_chunk_recorder_stores_what_the_replay_buffer_stores(tmp_path):
    """Recorded while TD3 learns on 2 envs with 25-step episodes: streamed back, it equals TD3's own buffer."""
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 25})
    model = TD3("MlpPolicy", env, buffer_size=200, learning_starts=20, batch_size=16,
                policy_kwargs={"net_arch": [8]}, seed=0)
    recorder = ChunkRecorder(tmp_path / "online", chunk_size=30)
    model.learn(120, callback=recorder)
    manifest = read_manifest(tmp_path / "online")
    assert manifest["n_transitions"] == 120 and manifest["env_id"] == "Pendulum-v1"
    assert manifest["provenance"]["algorithm"] == "TD3"
    replayed = ReplayBuffer(200, env.observation_space, env.action_space, n_envs=2)
    load_chunks(replayed, tmp_path / "online")
    assert_same_buffer(replayed, model.replay_buffer)
    assert model.replay_buffer.timeouts[:60].sum() == 4  # two episode ends per env: the terminal rows are in
    with pytest.raises(ValueError, match="already recorded"):
        model.learn(10, callback=recorder)


def test_chunk_recorder_with_an_on_policy_model(tmp_path):
    """PPO: the last rollout in its buffer is the tail of what was recorded."""
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [8]},
                seed=0)
    model.learn(64, callback=ChunkRecorder(tmp_path / "ppo"))
    (chunk,) = iter_chunks(tmp_path / "ppo")
    assert len(chunk["rewards"]) == 64
    # After training, SB3 has flattened its rollout buffer to (n_steps * n_envs, ...) rows, in order for one env.
    np.testing.assert_array_equal(chunk["observations"][32:], model.rollout_buffer.observations.reshape(32, 4))
    np.testing.assert_array_equal(chunk["actions"][32:], model.rollout_buffer.actions.reshape(32))
    continuing = ~chunk["dones"][:-1]
    np.testing.assert_array_equal(chunk["next_observations"][:-1][continuing], chunk["observations"][1:][continuing])


def test_chunk_recorder_refuses_a_normalised_env(tmp_path):
    model = TD3("MlpPolicy", VecNormalize(make_vec_env("Pendulum-v1")), policy_kwargs={"net_arch": [8]})
    with pytest.raises(ValueError, match="VecNormalize"):
        model.learn(5, callback=ChunkRecorder(tmp_path / "norm"))
    assert not (tmp_path / "norm" / "manifest.json").exists()
