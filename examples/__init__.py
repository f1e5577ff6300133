"""Examples for the people who connect to the mesh."""
