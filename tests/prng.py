# A small deterministic PRNG with the random.Random methods the tests use. MicroPython's `random`
# has no Random class, and the same seed must give the same sequence on both interpreters.


class Rng:
    def __init__(self, seed=1):
        self.seed(seed)

    def seed(self, seed):
        s = (int(seed) * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
        self._s = s or 0x6D2B79F5

    def _next(self):  # xorshift32
        x = self._s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._s = x
        return x

    def random(self):
        return self._next() / 4294967296.0

    def randint(self, a, b):
        span = b - a + 1
        if span <= 0:
            raise ValueError("empty range")
        if span <= 0xFFFFFFFF:
            return a + self._next() % span
        return a + ((self._next() << 32) | self._next()) % span

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def choice(self, seq):
        return seq[self._next() % len(seq)]
