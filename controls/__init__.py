"""controls: from what a person does to the camera poses the world model is conditioned on."""
