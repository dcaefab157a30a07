"""rl-zoo3 integration: our algorithms in rl-zoo3's registries, Optuna samplers, CLI support.

``register_zoo()`` (in :mod:`sb3_ext.zoo.registry`) is the one place that adds sb3-ext to rl-zoo3;
``python -m sb3_ext.train`` / ``sb3_ext.enjoy`` / ``sb3_ext.record_video`` call it before handing
over to rl-zoo3's own scripts, and ``python -m sb3_ext.zoo.custom_envs`` writes the module that
makes plain ``python -m rl_zoo3.train`` call it too.
"""
