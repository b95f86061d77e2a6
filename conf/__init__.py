# Not code: this file makes the copy of conf/ that the wheel carries the package `flipsketch.conf`
# (pyproject maps it), which Hydra finds as pkg://flipsketch.conf. In a checkout conf/ is read as
# a folder (flipsketch.resources.CONF_DIR).
