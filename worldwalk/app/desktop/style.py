"""Colours and sizes of the explorer's overlays."""
PANEL = (14, 16, 20, 178)  # translucent panels
PANEL_SOLID = (14, 16, 20, 225)
TEXT = (232, 236, 240)
DIM = (150, 158, 170)
ACCENT = (110, 220, 150)  # you, good numbers
AMBER = (255, 196, 90)  # slower than real time, bookmarks
RED = (238, 72, 72)  # recording, errors
PATH = (120, 180, 255)
GRID = (255, 255, 255, 28)

FONT_SIZE = 19
TITLE_SIZE = 22
MARGIN = 10
MAP_SIZE = 150
