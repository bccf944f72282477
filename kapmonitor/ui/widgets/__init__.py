"""Widgets shared by the rooms: the chart, the timeline, the big numbers, the alarm banner, layouts.

They know nothing of the store; a room feeds them. They may import only each other."""
