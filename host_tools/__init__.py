# Host-side tools (CPython): simulation of the pin layer, scenario runner, capture, deploy.
