# slkd_basicsr must be imported before basicsr: it patches BasicSR 1.4.2 for today's torchvision and registers the archs
import slkd_basicsr  # noqa: F401
