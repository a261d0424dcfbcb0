"""The pipeline's stages as plain functions (prepare, train, evaluate, register, the whole workflow), and what
passes between them (`contract`). The Hydra entry points `python -m pipeline.<stage>` are thin shells over these.
"""
