"""Linear forward operators (installed as ``scoremed.operators``). They know nothing about SDEs."""
