"""Analytics for the dashboard, ``unsource stats`` and ``unsource report``.

``stats`` and ``spikes`` are pure (typed values in, typed values out); ``queries`` reads the
tables with SQLAlchemy Core and hands plain rows to them.
"""
