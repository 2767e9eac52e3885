"""The device endpoints: thin views over devices.services and devices.selectors."""

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from core.fields import validated
from core.scopes import device_in_path
from devices import selectors, services
from devices.api import schema
from devices.api.serializers import (
    DeviceCreateInputSerializer,
    DeviceOutputSerializer,
    DeviceUpdateInputSerializer,
)


def _device_reply(tenant, device_id: str):
    device = selectors.device_get_with_voices(tenant, device_id=device_id)
    return ok(DeviceOutputSerializer(device).data)


class DeviceListView(VoiceprintAPIView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        devices = selectors.device_list(request.user.tenant)
        return ok(DeviceOutputSerializer(devices, many=True).data)

    @extend_schema(**schema.CREATE)
    def post(self, request):
        params = validated(DeviceCreateInputSerializer, request.data)
        device = services.device_create(request.user.tenant, **params)
        return _device_reply(request.user.tenant, device.device_id)


class DeviceDetailView(VoiceprintAPIView):
    device_rules = {"get": device_in_path}

    @extend_schema(**schema.GET)
    def get(self, request, device_id: str):
        return _device_reply(request.user.tenant, device_id)

    @extend_schema(**schema.UPDATE)
    def put(self, request, device_id: str):
        device = selectors.device_get(request.user.tenant, device_id=device_id)
        params = validated(DeviceUpdateInputSerializer, request.data)
        services.device_update(device, **params)
        return _device_reply(request.user.tenant, device_id)

    @extend_schema(**schema.DELETE)
    def delete(self, request, device_id: str):
        services.device_delete(selectors.device_get(request.user.tenant, device_id=device_id))
        return ok()
