"""A numpy array computed forwards with explicit powers of gamma (O(T^2))."""


def discounted_returns(rewards, gamma):
    r = np.asarray(rewards, dtype=np.float64)
    return np.array([np.sum(r[t:] * gamma ** np.arange(len(r) - t)) for t in range(len(r))])
