"""HTTP layer: one APIRouter per resource, thin over ``vitalens.service.ops``."""
