"""The device endpoints: thin views over devices.services and devices.selectors."""

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from devices import selectors, services
from devices.api import schema
from devices.api.serializers import (
    DeviceCreateSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
)


def _device_reply(tenant, device_id: str):
    return ok(DeviceSerializer(selectors.device_get(tenant, device_id)).data)


class DeviceListView(VoiceprintAPIView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        return ok(DeviceSerializer(selectors.device_list(request.user.tenant), many=True).data)

    @extend_schema(**schema.CREATE)
    def post(self, request):
        params = DeviceCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        device = services.create_device(request.user.tenant, **params.validated_data)
        return _device_reply(request.user.tenant, device.device_id)


class DeviceDetailView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, device_id: str):
        return _device_reply(request.user.tenant, device_id)

    @extend_schema(**schema.UPDATE)
    def put(self, request, device_id: str):
        device = selectors.device_get_plain(request.user.tenant, device_id)
        params = DeviceUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        services.rename_device(device, params.validated_data["device_name"])
        return _device_reply(request.user.tenant, device_id)

    @extend_schema(**schema.DELETE)
    def delete(self, request, device_id: str):
        services.delete_device(selectors.device_get_plain(request.user.tenant, device_id))
        return ok()
