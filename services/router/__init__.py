"""Router (điều phối): opens a case for each request, decides the responsible unit and handler,
follows the unit's answers and the deadlines, and publishes what it recorded."""
