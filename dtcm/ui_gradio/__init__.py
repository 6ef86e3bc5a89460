"""The Gradio app's parts that are not handlers: the layout of its tabs and the files it serves.

``app.py`` keeps the handlers (one per action) and wires them to the components built here.
"""
