"""The lecture's two toy environments, with Gymnasium's contract.

The notebook keeps the lecture's simple ``step(action) -> (state, reward, done)`` API where students read it; the
grader trains with these, so a student cannot change the environment a behaviour check runs on.
``tests/test_envs.py`` proves both follow the notebook's dynamics and pass ``gymnasium.utils.env_checker.check_env``.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium import spaces

LEFT, CENTER, RIGHT = 0, 1, 2


class BanditEnv(gym.Env):
    """One state, three actions; only action 0 ('L') pays.

    ## Action Space
    ``Discrete(3)``: 0 = L, 1 = C, 2 = R.
    ## Observation Space
    ``Discrete(1)``: the state is always 0.
    ## Reward
    1 for action 0, else 0.
    ## Episode End
    Never terminates; truncated after ``max_steps`` steps.
    """

    def __init__(self, max_steps: int = 500):
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Discrete(1)
        self.max_steps = max_steps
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return 0, {}

    def step(self, action):
        self._t += 1
        reward = 1.0 if action == LEFT else 0.0
        return 0, reward, False, self._t >= self.max_steps, {}


class ChainEnv(gym.Env):
    """Three states in a row, A (-1), B (0), C (1); the agent starts in A.

    ## Action Space
    ``Discrete(3)``: 0 = move left, 1 = stay ('center'), 2 = move right; moves are clipped at the ends.
    ## Observation Space
    ``Discrete(3, start=-1)``: the position, -1, 0 or 1.
    ## Reward
    +1 for 'center' in the rightmost state, -0.05 for every other step.
    ## Episode End
    Terminates after the rewarded action; truncated after ``max_steps`` steps (the lecture's loop had no bound, so a
    policy that never reaches the goal never ended).
    """

    def __init__(self, max_steps: int = 100):
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Discrete(3, start=-1)
        self.max_steps = max_steps
        self.state = -1
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self._t = -1, 0
        return self.state, {}

    def step(self, action):
        self._t += 1
        self.state = max(-1, min(1, self.state + {LEFT: -1, CENTER: 0, RIGHT: 1}[int(action)]))
        if self.state == 1 and action == CENTER:
            return self.state, 1.0, True, False, {}
        return self.state, -0.05, False, self._t >= self.max_steps, {}
