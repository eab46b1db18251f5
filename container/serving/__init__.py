"""`serve`: multi-model-server (model_server), watched and restarted (supervisor), with this
image's handler (handler), whose hooks (hooks) decode requests (decoders, images, pixels), run
the net (engines, cores) and encode the answers (encoders); a model's own inference code
(user_code) may replace any of them."""
