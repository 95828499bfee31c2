"""Video half of the offline Emotion-LLaMA pipeline: frames, face tracks, action units, the peak rule, label fusion.

``decode`` reads frames (sampled, and at the full rate around the peak), ``tracking`` links faces into
the main speaker's track, ``action_units`` measures 16 AU proxies from landmarks, ``au_rules`` holds
MERR's AU texts, pseudo-labels and peak-frame rule, ``visual`` runs them in order, and ``fusion``
combines face, AU and voice evidence into the label distribution. Importing this package loads nothing.
"""
