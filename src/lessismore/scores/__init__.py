"""Model-based scores of training candidates (ARCHITECTURE "Scores as records"): data about an example, computed by
a model, for selection where there are no votes. ifd.py: the instruction-following difficulty from the base model's
own losses. (Issue 16: the quality and complexity raters, the score cache and the `scored` selection come next.)
"""
