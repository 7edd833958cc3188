"""The azml side: what the ``azml`` commands do, as a library under the thin click layer."""
